//! Uploads a generated file to a running Teleportal server over a real WebSocket, downloads it
//! back, checks it byte for byte, and measures both directions and the server's memory.
//!
//! ```sh
//! cargo run --release -p teleportal-cli -- serve --listen 127.0.0.1:1234 --data ./data
//! cargo run --release --example file_transfer -- --server ws://127.0.0.1:1234 --size 1GiB
//! ```
//!
//! The file is generated chunk by chunk from a seed, so neither side needs it whole: its
//! Merkle tree is built in a first pass (32 bytes per chunk kept), the chunks are generated
//! again to upload (pipelined, up to `--in-flight` unacknowledged, default 16) and once more
//! to compare what the download yields, after each downloaded chunk's proof was checked
//! against the file id. `--size` takes bytes or KiB/MiB/GiB; the seed is
//! the current time in seconds, so runs a second apart upload different files (`--seed N` to repeat one).
//!
//! Server memory is read from `/proc/<pid>/status` of `--server-pid PID`, or of the process
//! listening on the server's port when that can be found: growth is the peak resident size
//! (`VmHWM`) after the transfers minus the resident size (`VmRSS`) before them.
//!
//! The last line is exactly
//! `upload <x> MB/s, download <y> MB/s, server RSS growth <z> MB` (MB = 10^6 bytes; RSS growth
//! in MiB, `n/a` without a pid). The exit status is non-zero on any refusal, NACK or mismatch.

use std::collections::VecDeque;
use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use teleportal::core::merkle::{
    DEFAULT_CHUNK_SIZE, Sha256Hasher, TreeBuilder, file_id, parse_file_id, verify_proof,
};
use teleportal::core::rpc::{
    FILE_DOWNLOAD, FILE_UPLOAD, FileDownloadRequest, FileDownloadResponse, FilePartStream,
    FileUploadRequest, FileUploadResponse,
};
use teleportal::core::{
    Body, Frame, Message, MessageId, MessageIdHasher, RpcKind, RpcMessage, RpcPayload,
};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message as WsMessage;

type Error = Box<dyn std::error::Error + Send + Sync>;

const USAGE: &str = "usage: file_transfer --server ws://ADDR [--size N[KiB|MiB|GiB]] \
[--server-pid PID] [--in-flight N] [--seed N]";

struct Args {
    server: String,
    size: u64,
    server_pid: Option<u32>,
    in_flight: usize,
    seed: u64,
}

fn parse_size(text: &str) -> Result<u64, Error> {
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map_or((text, ""), |at| text.split_at(at));
    let factor = match unit {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => return Err(format!("--size: unknown unit {other:?}").into()),
    };
    Ok(number.parse::<u64>()? * factor)
}

fn parse_args() -> Result<Args, Error> {
    let mut args = Args {
        server: String::new(),
        size: 100 << 20,
        server_pid: None,
        in_flight: 16,
        seed: SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs(),
    };
    let mut argv = std::env::args().skip(1);
    while let Some(arg) = argv.next() {
        let mut value = || {
            argv.next()
                .ok_or_else(|| format!("{arg} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--server" => args.server = value()?,
            "--size" => args.size = parse_size(&value()?)?,
            "--server-pid" => args.server_pid = Some(value()?.parse()?),
            "--in-flight" => args.in_flight = value()?.parse::<usize>()?.max(1),
            "--seed" => args.seed = value()?.parse()?,
            _ => return Err(format!("unexpected argument {arg:?}\n{USAGE}").into()),
        }
    }
    if args.server.is_empty() {
        return Err(USAGE.into());
    }
    Ok(args)
}

/// The file's chunks, generated from the seed: the same bytes every pass.
struct Generated {
    size: u64,
    chunk: usize,
    seed: u64,
}

impl Generated {
    fn count(&self) -> u32 {
        let chunk = self.chunk as u64;
        u32::try_from(self.size.div_ceil(chunk).max(1)).unwrap_or(u32::MAX)
    }

    fn chunk(&self, index: u32) -> Bytes {
        let start = u64::from(index) * self.chunk as u64;
        let left = self.size.saturating_sub(start);
        let len = usize::try_from(left).map_or(self.chunk, |left| left.min(self.chunk));
        // xorshift64*, four interleaved generators (32 bytes a round, so the CPU runs them
        // side by side) seeded per chunk: cheap and never compressible.
        let base = self.seed ^ (u64::from(index) + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut lanes: [u64; 4] =
            std::array::from_fn(|lane| base ^ ((lane as u64 + 1) << 56) ^ 0x5851_F42D);
        let mut out = vec![0u8; len.next_multiple_of(32)];
        for block in out.chunks_exact_mut(32) {
            for (state, word) in lanes.iter_mut().zip(block.chunks_exact_mut(8)) {
                *state ^= *state >> 12;
                *state ^= *state << 25;
                *state ^= *state >> 27;
                word.copy_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
            }
        }
        out.truncate(len);
        Bytes::from(out)
    }
}

/// The server's `VmHWM` and `VmRSS` in MiB.
fn memory(pid: u32) -> Result<(f64, f64), Error> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> Result<f64, Error> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .ok_or(format!("no {name}"))?;
        let kb: f64 = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()?;
        Ok(kb / 1024.0)
    };
    Ok((field("VmHWM:")?, field("VmRSS:")?))
}

fn rpc(document: &str, method: &str, kind: RpcKind, payload: teleportal::core::Any) -> Message {
    Message::rpc(
        document,
        RpcMessage {
            method: method.into(),
            kind,
            payload: RpcPayload::Success(payload),
        },
    )
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("file_transfer: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<String, Error> {
    let args = parse_args()?;
    let file = Generated {
        size: args.size,
        chunk: DEFAULT_CHUNK_SIZE,
        seed: args.seed,
    };
    let count = file.count();
    let mut builder = TreeBuilder::new(Sha256Hasher);
    for index in 0..count {
        builder.push(&file.chunk(index))?;
    }
    let tree = builder.finish();
    let id = file_id(&tree.root());
    let document = format!("file-transfer-{}", args.seed);
    eprintln!(
        "file_transfer: {} bytes in {count} chunks, id {id}",
        args.size
    );

    let (socket, _) = tokio_tungstenite::connect_async_with_config(
        format!("{}/?token=file-transfer", args.server),
        None,
        true,
    )
    .await?;
    let (mut tx, mut rx) = socket.split();
    // Sends a message; returns its bytes, whose id (spec §9) names its ACK.
    let mut send = async |message: Message| -> Result<Bytes, Error> {
        let bytes = message.to_bytes();
        tx.send(WsMessage::Binary(bytes.clone())).await?;
        Ok(bytes)
    };
    // The next message of interest: an ack or an rpc message (others, e.g. pings, skipped).
    let mut next = async || -> Result<Message, Error> {
        loop {
            let frame = rx.next().await.ok_or("server closed the connection")??;
            if let WsMessage::Binary(bytes) = frame
                && let Frame::Message(message) = Frame::decode(bytes)?
                && matches!(message.body, Body::Ack(_) | Body::Rpc(_))
            {
                return Ok(message);
            }
        }
    };
    let before = args.server_pid.map(memory).transpose()?;

    // Upload.
    let started = Instant::now();
    let request = FileUploadRequest {
        file_id: id.clone(),
        filename: format!("generated-{}.bin", args.seed),
        size: args.size,
        mime_type: "application/octet-stream".into(),
        last_modified: 0.0,
        encrypted: false,
        chunk_size: Some(DEFAULT_CHUNK_SIZE as u64),
    };
    send(rpc(
        &document,
        FILE_UPLOAD,
        RpcKind::Request,
        request.to_any(),
    ))
    .await?;
    let existing = loop {
        let message = next().await?;
        match message.body {
            Body::Rpc(RpcMessage {
                payload: RpcPayload::Success(any),
                ..
            }) => match FileUploadResponse::from_any(&any)? {
                FileUploadResponse::Accepted {
                    existing_chunks, ..
                } => break existing_chunks.unwrap_or_default(),
                // Content-addressed: the server has these very bytes already.
                FileUploadResponse::AlreadyExists { .. } => {
                    eprintln!("file_transfer: the server already has this file");
                    break (0..u64::from(count)).collect();
                }
                other => return Err(format!("upload refused: {other:?}").into()),
            },
            Body::Rpc(other) => return Err(format!("upload failed: {other:?}").into()),
            _ => {}
        }
    };
    // Ids of parts sent and not yet acknowledged, and (in sending order) those still hashing.
    // A part's id is only needed to match its ACK, and it is a byte-serial hash (about a
    // millisecond per MiB): parts are hashed two at a time on another thread, side by side
    // (`MessageIdHasher::update_pair`), while the next ones go out.
    let mut unacked: Vec<MessageId> = Vec::new();
    let mut hashing: VecDeque<JoinHandle<[MessageId; 2]>> = VecDeque::new();
    let mut unpaired: Option<Bytes> = None;
    let mut pending = (0..count).filter(|i| !existing.contains(&u64::from(*i)));
    loop {
        let in_flight = |unacked: &Vec<MessageId>, hashing: &VecDeque<_>, unpaired: &Option<_>| {
            unacked.len() + 2 * hashing.len() + usize::from(unpaired.is_some())
        };
        while in_flight(&unacked, &hashing, &unpaired) < args.in_flight {
            let Some(index) = pending.next() else { break };
            let part = FilePartStream {
                file_id: id.clone(),
                chunk_index: u64::from(index),
                chunk_data: file.chunk(index),
                merkle_proof: vec![],
                total_chunks: u64::from(count),
                bytes_uploaded: 0,
                encrypted: false,
            };
            let kind = RpcKind::Stream {
                original_request_id: id.clone(),
            };
            let sent = send(rpc(&document, FILE_UPLOAD, kind, part.to_any())).await?;
            match unpaired.take() {
                None => unpaired = Some(sent),
                Some(earlier) => hashing.push_back(tokio::task::spawn_blocking(move || {
                    let (mut a, mut b) = (MessageIdHasher::new(), MessageIdHasher::new());
                    a.update_pair(&earlier, &mut b, &sent);
                    [a.finish(), b.finish()]
                })),
            }
        }
        if in_flight(&unacked, &hashing, &unpaired) == 0 {
            break;
        }
        if let Body::Ack(ack) = next().await?.body {
            if let Some(error) = ack.error {
                return Err(format!("chunk NACKed: {error}").into());
            }
            while !unacked.iter().any(|id| id.to_string() == ack.message_id) {
                if let Some(ids) = hashing.pop_front() {
                    unacked.extend(ids.await?);
                } else if let Some(last) = unpaired.take() {
                    unacked.push(MessageId::of(&last));
                } else {
                    break;
                }
            }
            unacked.retain(|id| id.to_string() != ack.message_id);
        }
    }
    let upload = started.elapsed();

    // Download: every part's proof checked against the id, then compared with the chunk
    // generated again; nothing but the current chunk is held.
    let started = Instant::now();
    let request = FileDownloadRequest {
        file_id: id.clone(),
    };
    send(rpc(
        &document,
        FILE_DOWNLOAD,
        RpcKind::Request,
        request.to_any(),
    ))
    .await?;
    let root = parse_file_id(&id).ok_or("bad file id")?;
    let mut index = 0u32;
    loop {
        let Body::Rpc(RpcMessage { kind, payload, .. }) = next().await?.body else {
            continue;
        };
        match (kind, payload) {
            (RpcKind::Stream { .. }, RpcPayload::Success(any)) => {
                let part = FilePartStream::from_any(&any)?;
                let proof: Vec<[u8; 32]> = part
                    .merkle_proof
                    .iter()
                    .map(|h| <[u8; 32]>::try_from(h.as_ref()))
                    .collect::<Result<_, _>>()?;
                if part.chunk_index != u64::from(index)
                    || !verify_proof(
                        &Sha256Hasher,
                        &part.chunk_data,
                        &proof,
                        &root,
                        u64::from(index),
                        u64::from(count),
                    )
                {
                    return Err(format!("downloaded chunk {index} failed its proof").into());
                }
                if part.chunk_data != file.chunk(index) {
                    return Err(format!("downloaded chunk {index} differs from the upload").into());
                }
                index += 1;
            }
            (RpcKind::Response { .. }, RpcPayload::Success(any)) => {
                match FileDownloadResponse::from_any(&any)? {
                    FileDownloadResponse::Allowed { .. } if index == count => break,
                    FileDownloadResponse::Allowed { .. } => {
                        return Err(
                            format!("download ended after {index} of {count} chunks").into()
                        );
                    }
                    denied => return Err(format!("download refused: {denied:?}").into()),
                }
            }
            (_, error) => return Err(format!("download failed: {error:?}").into()),
        }
    }
    let download = started.elapsed();

    let mb = args.size as f64 / 1e6;
    let growth = match (args.server_pid, before) {
        (Some(pid), Some((_, rss_before))) => format!("{:.1}", memory(pid)?.0 - rss_before),
        _ => "n/a".to_owned(),
    };
    Ok(format!(
        "upload {:.0} MB/s, download {:.0} MB/s, server RSS growth {growth} MB",
        mb / upload.as_secs_f64(),
        mb / download.as_secs_f64()
    ))
}

// A fresh 1 MiB buffer per chunk: glibc maps and unmaps each one (a page fault per 4 KiB,
// zeroed by the kernel), while jemalloc reuses them.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
