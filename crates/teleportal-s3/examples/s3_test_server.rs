//! A real S3-compatible server for tests of other processes (`teleportal serve`'s
//! `--storage s3://…` and `--files s3://…`): the same s3s-fs server this crate's tests use,
//! over a temporary directory, with signature checking.
//!
//! ```sh
//! cargo run -p teleportal-s3 --example s3_test_server
//! ```
//!
//! It prints one line, `s3 endpoint http://127.0.0.1:PORT bucket BUCKET key KEY secret SECRET`,
//! then serves until it is killed (or its standard input closes).
#![allow(missing_docs)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::Write;

use tokio::io::AsyncReadExt;

#[tokio::main]
async fn main() {
    let server = support::TestServer::start().await;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(
        stdout,
        "s3 endpoint {} bucket {} key {} secret {}",
        server.endpoint,
        support::BUCKET,
        support::ACCESS_KEY,
        support::SECRET_KEY
    );
    let _ = stdout.flush();
    drop(stdout);
    // Serve until the parent goes away: its end of our stdin closes.
    let mut stdin = tokio::io::stdin();
    let mut buffer = [0u8; 64];
    while matches!(stdin.read(&mut buffer).await, Ok(n) if n > 0) {}
}
