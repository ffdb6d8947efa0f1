//! Message ids of large messages (file chunks), hashed off the async workers and two at a
//! time.
//!
//! An id (spec §9) is a byte-serial hash: about a millisecond per MiB, spent waiting on one
//! dependency chain. A worker that holds two messages runs both chains in one loop
//! ([`MessageIdHasher::update_pair`]) at nearly twice the throughput, so workers take up to
//! two jobs and pick up a second one between 64 KiB segments; a new worker starts only when
//! every running one is full.

use std::collections::VecDeque;
use std::sync::{Mutex, OnceLock, PoisonError};

use bytes::Bytes;
use teleportal_core::{MessageId, MessageIdHasher};
use tokio::sync::oneshot;

/// Bytes hashed between looks at the queue: small enough that a second message joins soon.
const SEGMENT: usize = 64 * 1024;

/// Messages one worker hashes side by side.
const PER_WORKER: usize = 2;

struct Job {
    bytes: Bytes,
    hashed: usize,
    hasher: MessageIdHasher,
    done: oneshot::Sender<MessageId>,
}

impl Job {
    /// How many bytes the next segment has.
    fn segment_len(&self) -> usize {
        (self.bytes.len() - self.hashed).min(SEGMENT)
    }
}

#[derive(Default)]
struct Pool {
    queue: VecDeque<Job>,
    workers: usize,
    /// Jobs taken by workers and not yet done.
    active: usize,
}

fn pool() -> &'static Mutex<Pool> {
    static POOL: OnceLock<Mutex<Pool>> = OnceLock::new();
    POOL.get_or_init(Mutex::default)
}

/// One worker per core at most; asked once (on Linux the answer reads cgroup files).
fn max_workers() -> usize {
    static MAX: OnceLock<usize> = OnceLock::new();
    *MAX.get_or_init(|| std::thread::available_parallelism().map_or(2, usize::from))
}

fn lock(pool: &Mutex<Pool>) -> std::sync::MutexGuard<'_, Pool> {
    // Every critical section leaves the counters and queue consistent.
    pool.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Hashes `bytes` on the blocking pool, paired with another message when there is one.
/// Outside a tokio runtime it hashes at once.
pub(crate) fn hash(bytes: Bytes) -> oneshot::Receiver<MessageId> {
    let (done, id) = oneshot::channel();
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        let _ = done.send(MessageId::of(&bytes));
        return id;
    };
    let max_workers = max_workers();
    let start_worker = {
        let mut pool = lock(pool());
        pool.queue.push_back(Job {
            bytes,
            hashed: 0,
            hasher: MessageIdHasher::new(),
            done,
        });
        let free = (pool.workers * PER_WORKER).saturating_sub(pool.active);
        let start = pool.queue.len() > free && pool.workers < max_workers;
        pool.workers += usize::from(start);
        start
    };
    if start_worker {
        runtime.spawn_blocking(work);
    }
    id
}

/// Hashes jobs until the queue is empty, two at a time when it can.
fn work() {
    let mut jobs: Vec<Job> = Vec::with_capacity(PER_WORKER);
    loop {
        {
            let mut pool = lock(pool());
            while jobs.len() < PER_WORKER {
                let Some(job) = pool.queue.pop_front() else {
                    break;
                };
                pool.active += 1;
                jobs.push(job);
            }
            if jobs.is_empty() {
                pool.workers -= 1;
                return;
            }
        }
        match jobs.as_mut_slice() {
            [one, two] => {
                let (a, b) = (one.segment_len(), two.segment_len());
                let first = &one.bytes[one.hashed..one.hashed + a];
                let second = &two.bytes[two.hashed..two.hashed + b];
                one.hasher.update_pair(first, &mut two.hasher, second);
                one.hashed += a;
                two.hashed += b;
            }
            [one] => {
                let a = one.segment_len();
                one.hasher.update(&one.bytes[one.hashed..one.hashed + a]);
                one.hashed += a;
            }
            _ => {}
        }
        let (finished, going): (Vec<Job>, Vec<Job>) = jobs
            .drain(..)
            .partition(|job| job.hashed >= job.bytes.len());
        jobs = going;
        if !finished.is_empty() {
            lock(pool()).active -= finished.len();
            for job in finished {
                // The asker may have gone (connection closed): nobody needs the id then.
                let _ = job.done.send(job.hasher.finish());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ids_hashed_together_are_each_messages_own() {
        let messages: Vec<Bytes> = (0..9u8)
            .map(|seed| {
                let len = 50_000 * usize::from(seed) + 7; // 7 bytes to 400 KB, uneven segments
                Bytes::from(
                    (0..len)
                        .map(|i| seed ^ (i % 251).to_le_bytes()[0])
                        .collect::<Vec<u8>>(),
                )
            })
            .collect();
        let pending: Vec<_> = messages.iter().cloned().map(hash).collect();
        for (message, id) in messages.iter().zip(pending) {
            assert_eq!(id.await.unwrap(), MessageId::of(message));
        }
        let pool = lock(pool());
        assert_eq!((pool.active, pool.queue.len()), (0, 0));
    }

    #[test]
    fn outside_a_runtime_the_id_is_hashed_at_once() {
        let mut id = hash(Bytes::from_static(b"a"));
        assert_eq!(id.try_recv().unwrap().to_string(), "e40c292cd3034e36");
    }
}
