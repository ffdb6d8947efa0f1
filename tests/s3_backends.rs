//! `teleportal serve` on S3: `--storage s3://…` keeps documents in an S3-compatible store and
//! `--files s3://…` keeps finished files there. The store is a real one: s3s-fs with signature
//! checking, run by `teleportal-s3`'s `s3_test_server` example (no install step).

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use support::{ServerProcess, example, real_clients_available, run_client};

/// A running `s3_test_server`: its endpoint, bucket and credentials; killed when dropped.
struct S3Server {
    child: Child,
    endpoint: String,
    bucket: String,
    key: String,
    secret: String,
}

impl S3Server {
    fn start() -> S3Server {
        let mut child = Command::new(example("s3_test_server"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the s3_test_server example");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut line)
            .expect("read its first line");
        // `s3 endpoint URL bucket NAME key KEY secret SECRET`
        let words: Vec<&str> = line.split_whitespace().collect();
        let [
            _,
            "endpoint",
            endpoint,
            "bucket",
            bucket,
            "key",
            key,
            "secret",
            secret,
        ] = words.as_slice()
        else {
            panic!("unexpected first line {line:?}");
        };
        S3Server {
            endpoint: (*endpoint).to_owned(),
            bucket: (*bucket).to_owned(),
            key: (*key).to_owned(),
            secret: (*secret).to_owned(),
            child,
        }
    }

    fn url(&self, prefix: &str) -> String {
        format!(
            "s3://{}/{prefix}?endpoint={}&region=us-east-1",
            self.bucket, self.endpoint
        )
    }

    fn env(&self) -> [(&str, &str); 2] {
        [
            ("AWS_ACCESS_KEY_ID", self.key.as_str()),
            ("AWS_SECRET_ACCESS_KEY", self.secret.as_str()),
        ]
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn documents_in_s3_survive_a_restart_with_an_empty_data_directory() {
    if !real_clients_available() {
        return;
    }
    let s3 = S3Server::start();
    let storage = s3.url("documents");
    let args = ["--storage", storage.as_str()];
    let data = tempfile::tempdir().expect("temp dir");
    let server = ServerProcess::start_with_env(data.path(), &args, &s3.env());
    run_client(&server.url, "notes/s3", &["insert:kept in s3", "flush"]);
    let status = server.terminate();
    assert!(status.success(), "graceful shutdown failed: {status}");

    // Nothing of the document is in --data: a fresh directory still finds it.
    let fresh = tempfile::tempdir().expect("temp dir");
    let server = ServerProcess::start_with_env(fresh.path(), &args, &s3.env());
    let seen = run_client(&server.url, "notes/s3", &["print"]);
    assert_eq!(seen["content"].as_str(), Some("kept in s3"));
}

#[test]
fn files_in_s3_upload_and_download_through_teleportal_serve() {
    let s3 = S3Server::start();
    let files = s3.url("files");
    let data = tempfile::tempdir().expect("temp dir");
    let server =
        ServerProcess::start_with_env(data.path(), &["--files", files.as_str()], &s3.env());
    // Three chunks and a short one: a file past the multipart part size would take longer.
    let output = Command::new(example("file_transfer"))
        .args(["--server", &server.url, "--size", "3145733", "--seed", "11"])
        .output()
        .expect("run file_transfer");
    assert!(
        output.status.success(),
        "file_transfer failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    // The file is in S3, not in --data: a server on a fresh directory still serves it.
    let status = server.terminate();
    assert!(status.success(), "graceful shutdown failed: {status}");
    let fresh = tempfile::tempdir().expect("temp dir");
    let server =
        ServerProcess::start_with_env(fresh.path(), &["--files", files.as_str()], &s3.env());
    let again = Command::new(example("file_transfer"))
        .args(["--server", &server.url, "--size", "3145733", "--seed", "11"])
        .output()
        .expect("run file_transfer");
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "second transfer failed: {stderr}");
    assert!(
        stderr.contains("the server already has this file"),
        "the restarted server did not find the file in S3: {stderr}"
    );
}
