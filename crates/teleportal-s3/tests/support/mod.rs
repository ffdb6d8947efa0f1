//! A real S3 server in the test process: s3s-fs over a temporary directory, with s3s's
//! SigV4 signature checking, served by hyper on a free port of 127.0.0.1. No install step and
//! no running service: every test starts its own.
//!
//! s3s-fs (0.14.1) evaluates `If-None-Match: *` and `If-Match` and then writes, as two steps,
//! and reads an object's ETag separately from its content. Two racing conditional puts can
//! then both succeed, which AWS S3, MinIO, R2 and Ceph never allow and which the adapter's
//! correctness rests on. [`AtomicConditions`] closes that gap here by running every write
//! alone (and reads beside each other, never beside a write), as a real service's per-key
//! atomicity does. It also counts the requests the tests check.
#![allow(dead_code, unreachable_pub)] // Each test binary uses part of it.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use object_store::ObjectStore;
use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result};
use teleportal_s3::S3Config;
use tokio::net::TcpListener;
use tokio::sync::RwLock;

pub const BUCKET: &str = "teleportal-test";
pub const REGION: &str = "us-east-1";
pub const ACCESS_KEY: &str = "teleportal-test-key";
pub const SECRET_KEY: &str = "teleportal-test-secret";

/// What the server saw, for tests that check how the adapter used it.
#[derive(Debug, Default)]
pub struct Requests {
    pub upload_parts: AtomicUsize,
    pub completed_multipart: AtomicUsize,
    pub precondition_failures: AtomicUsize,
    /// The `Range` of every `GET` whose key ends with `/data`, in order.
    pub data_ranges: Mutex<Vec<Option<Range>>>,
}

/// s3s-fs with conditional writes made atomic (see the module docs).
struct AtomicConditions {
    inner: s3s_fs::FileSystem,
    lock: RwLock<()>,
    requests: Arc<Requests>,
}

impl AtomicConditions {
    fn count_precondition<T>(&self, result: &S3Result<T>) {
        if let Err(e) = result
            && *e.code() == s3s::S3ErrorCode::PreconditionFailed
        {
            self.requests
                .precondition_failures
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Forwards reads under the shared lock and writes under the exclusive one.
macro_rules! forward {
    (read { $($r:ident($ri:ident) -> $ro:ident;)* } write { $($w:ident($wi:ident) -> $wo:ident;)* }) => {
        #[async_trait::async_trait]
        impl S3 for AtomicConditions {
            $(async fn $r(&self, req: S3Request<$ri>) -> S3Result<S3Response<$ro>> {
                let _shared = self.lock.read().await;
                self.inner.$r(req).await
            })*
            $(async fn $w(&self, req: S3Request<$wi>) -> S3Result<S3Response<$wo>> {
                let _alone = self.lock.write().await;
                let result = self.inner.$w(req).await;
                self.count_precondition(&result);
                result
            })*

            async fn get_object(
                &self,
                req: S3Request<GetObjectInput>,
            ) -> S3Result<S3Response<GetObjectOutput>> {
                if req.input.key.ends_with("/data") {
                    self.requests.data_ranges.lock().unwrap().push(req.input.range);
                }
                let _shared = self.lock.read().await;
                self.inner.get_object(req).await
            }

            async fn upload_part(
                &self,
                req: S3Request<UploadPartInput>,
            ) -> S3Result<S3Response<UploadPartOutput>> {
                self.requests.upload_parts.fetch_add(1, Ordering::Relaxed);
                self.inner.upload_part(req).await
            }

            async fn complete_multipart_upload(
                &self,
                req: S3Request<CompleteMultipartUploadInput>,
            ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
                let _alone = self.lock.write().await;
                let result = self.inner.complete_multipart_upload(req).await;
                if result.is_ok() {
                    self.requests.completed_multipart.fetch_add(1, Ordering::Relaxed);
                }
                result
            }
        }
    };
}

forward! {
    read {
        head_bucket(HeadBucketInput) -> HeadBucketOutput;
        list_buckets(ListBucketsInput) -> ListBucketsOutput;
        head_object(HeadObjectInput) -> HeadObjectOutput;
        list_objects(ListObjectsInput) -> ListObjectsOutput;
        list_objects_v2(ListObjectsV2Input) -> ListObjectsV2Output;
        create_multipart_upload(CreateMultipartUploadInput) -> CreateMultipartUploadOutput;
        list_parts(ListPartsInput) -> ListPartsOutput;
        abort_multipart_upload(AbortMultipartUploadInput) -> AbortMultipartUploadOutput;
    }
    write {
        create_bucket(CreateBucketInput) -> CreateBucketOutput;
        put_object(PutObjectInput) -> PutObjectOutput;
        copy_object(CopyObjectInput) -> CopyObjectOutput;
        delete_object(DeleteObjectInput) -> DeleteObjectOutput;
        delete_objects(DeleteObjectsInput) -> DeleteObjectsOutput;
    }
}

/// A running server; it stops when the test's runtime does.
pub struct TestServer {
    pub endpoint: String,
    pub requests: Arc<Requests>,
    _root: tempfile::TempDir,
}

impl TestServer {
    /// Starts s3s-fs with the bucket [`BUCKET`] on a free port of 127.0.0.1.
    pub async fn start() -> TestServer {
        let root = tempfile::tempdir().expect("temporary directory");
        std::fs::create_dir(root.path().join(BUCKET)).expect("bucket directory");
        let requests = Arc::new(Requests::default());
        let fs = s3s_fs::FileSystem::new(root.path()).expect("s3s-fs over the directory");
        let mut builder = s3s::service::S3ServiceBuilder::new(AtomicConditions {
            inner: fs,
            lock: RwLock::new(()),
            requests: Arc::clone(&requests),
        });
        builder.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = builder.build();

        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            while let Ok((socket, _)) = listener.accept().await {
                // Without it, Nagle's algorithm and delayed ACKs stall every small response.
                let _ = socket.set_nodelay(true);
                let conn = http
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        });
        TestServer {
            endpoint,
            requests,
            _root: root,
        }
    }

    /// A configuration for this server, under `prefix`.
    pub fn config(&self, prefix: &str) -> S3Config {
        S3Config::new(BUCKET)
            .endpoint(&self.endpoint)
            .region(REGION)
            .credentials(ACCESS_KEY, SECRET_KEY)
            .prefix(prefix)
    }

    /// One client for this server.
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        self.config("").object_store().expect("client")
    }
}

/// A prefix no other store of this process uses, so each conformance check starts empty.
pub fn fresh_prefix(name: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("{name}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}
