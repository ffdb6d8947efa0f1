//! The writer thread: group commit of queued writes.

use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;

use rusqlite::Connection;
use teleportal_storage::StorageError;
use tokio::sync::{mpsc, oneshot};

use super::sql;

/// One queued write.
pub(super) trait Job: Send {
    /// Runs the write inside the group's transaction, in its own savepoint.
    fn run(&mut self, conn: &Connection);

    /// Answers the caller once the group's fate is known.
    fn answer(self: Box<Self>, group: Result<(), &Arc<GroupFailed>>);
}

/// A write and the caller waiting for it.
pub(super) struct Pending<T, F> {
    work: Option<F>,
    outcome: Option<Result<T, StorageError>>,
    reply: oneshot::Sender<Result<T, StorageError>>,
}

impl<T, F> Pending<T, F> {
    pub(super) fn new(work: F, reply: oneshot::Sender<Result<T, StorageError>>) -> Self {
        Pending {
            work: Some(work),
            outcome: None,
            reply,
        }
    }
}

impl<T, F> Job for Pending<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> Result<T, StorageError> + Send,
{
    fn run(&mut self, conn: &Connection) {
        if let Some(work) = self.work.take() {
            self.outcome = Some(in_savepoint(conn, work));
        }
    }

    fn answer(self: Box<Self>, group: Result<(), &Arc<GroupFailed>>) {
        let outcome = match (self.outcome, group) {
            // Its own failure: its savepoint was rolled back, whatever the group did.
            (Some(Err(error)), _) => Err(error),
            (Some(Ok(value)), Ok(())) => Ok(value),
            (Some(Ok(_)) | None, Err(failed)) => {
                Err(StorageError::backend("sqlite", Arc::clone(failed)))
            }
            // Every job of a committed group ran; kept total rather than panicking.
            (None, Ok(())) => Err(StorageError::backend("sqlite", WriterStopped)),
        };
        // The caller may have stopped waiting (its future was dropped); nothing to do then.
        let _ = self.reply.send(outcome);
    }
}

fn in_savepoint<T>(
    conn: &Connection,
    work: impl FnOnce(&Connection) -> Result<T, StorageError>,
) -> Result<T, StorageError> {
    execute(conn, "SAVEPOINT job")?;
    let outcome = work(conn);
    if outcome.is_ok() {
        execute(conn, "RELEASE job")?;
    } else {
        // Undo this write alone; the rest of the group stays.
        execute(conn, "ROLLBACK TO job")?;
        execute(conn, "RELEASE job")?;
    }
    outcome
}

fn execute(conn: &Connection, statement: &str) -> Result<(), StorageError> {
    conn.prepare_cached(statement)
        .and_then(|mut s| s.execute([]))
        .map(drop)
        .map_err(sql)
}

/// Why a whole group of writes failed: none of it was stored (or, for a failed `COMMIT`, it is
/// unknown whether it was).
#[derive(Debug, thiserror::Error)]
pub(super) enum GroupFailed {
    /// `BEGIN`, `COMMIT` or a savepoint statement failed.
    #[error("the group commit's transaction failed")]
    Sqlite(#[source] rusqlite::Error),
    /// SQLite rolled the transaction back by itself (an I/O error, a full disk) while running
    /// one of the group's writes.
    #[error("the group commit's transaction was rolled back by an error in one of its writes")]
    RolledBack,
}

/// The writer thread is gone (it panicked); nothing more can be written.
#[derive(Debug, thiserror::Error)]
#[error("the SQLite writer thread stopped")]
pub(super) struct WriterStopped;

/// A committed (or failed) group on its way to its callers.
type Answered = (Vec<Box<dyn Job>>, Result<(), Arc<GroupFailed>>);

/// Starts the writer thread, which owns `conn`, and the thread that answers its callers.
///
/// The writer takes everything queued (up to `max_batch`) into one transaction, commits it with
/// one fsync, hands the group to the answering thread, and repeats until every sender is gone;
/// it then waits until every caller is answered and closes the database.
pub(super) fn spawn(
    conn: Connection,
    queue: mpsc::Receiver<Box<dyn Job>>,
    max_batch: usize,
) -> std::io::Result<JoinHandle<rusqlite::Result<()>>> {
    // Waking hundreds of callers costs about as much as running their writes; another thread
    // does it while the writer runs and commits the next group.
    let (answers, answering) = std_mpsc::channel::<Answered>();
    let answerer = std::thread::Builder::new()
        .name("teleportal-sqlite-answers".into())
        .spawn(move || {
            for (group, outcome) in answering {
                answer(group, outcome.as_ref());
            }
        })?;
    std::thread::Builder::new()
        .name("teleportal-sqlite-writer".into())
        .spawn(move || run(conn, queue, max_batch, answers, answerer))
}

fn run(
    conn: Connection,
    mut queue: mpsc::Receiver<Box<dyn Job>>,
    max_batch: usize,
    answers: std_mpsc::Sender<Answered>,
    answerer: JoinHandle<()>,
) -> rusqlite::Result<()> {
    while let Some(first) = queue.blocking_recv() {
        let mut group = Vec::with_capacity(max_batch.min(queue.len() + 1));
        group.push(first);
        while group.len() < max_batch {
            match queue.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let outcome = commit(&conn, &mut group).map_err(Arc::new);
        if let Err(unsent) = answers.send((group, outcome)) {
            // The answering thread is gone (it cannot panic, but stay total): answer here.
            let (group, outcome) = unsent.0;
            answer(group, outcome.as_ref());
        }
    }
    // Every sender is gone and the queue is drained: the store was closed or dropped. Every
    // caller is answered before the database closes.
    drop(answers);
    let _ = answerer.join();
    conn.close().map_err(|(_, error)| error)
}

fn answer(group: Vec<Box<dyn Job>>, outcome: Result<&(), &Arc<GroupFailed>>) {
    for job in group {
        job.answer(outcome.map(|_| ()));
    }
}

fn commit(conn: &Connection, group: &mut [Box<dyn Job>]) -> Result<(), GroupFailed> {
    conn.execute_batch("BEGIN IMMEDIATE")
        .map_err(GroupFailed::Sqlite)?;
    for job in group.iter_mut() {
        job.run(conn);
        if conn.is_autocommit() {
            // The transaction is gone; running more writes would commit each on its own,
            // outside the group, and report them wrongly.
            return Err(GroupFailed::RolledBack);
        }
    }
    conn.execute_batch("COMMIT").map_err(|error| {
        // Leave no transaction open for the next group; the error is what the callers see.
        let _ = conn.execute_batch("ROLLBACK");
        GroupFailed::Sqlite(error)
    })
}
