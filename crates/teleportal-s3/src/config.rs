//! [`S3Config`]: which bucket, where, and how to reach it.

use std::fmt;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use teleportal_storage::StorageError;

use crate::error::S3Error;

/// Where the stores keep their objects, and how to reach the S3-compatible service.
///
/// Anything left unset comes from the usual AWS environment variables (`AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`/`AWS_DEFAULT_REGION`,
/// `AWS_ENDPOINT`, …, read by [`object_store`]'s `AmazonS3Builder::from_env`) or, failing those,
/// from the instance's or container's role. What is set here wins over the environment.
///
/// ```
/// use teleportal_s3::S3Config;
///
/// let config = S3Config::new("teleportal")
///     .endpoint("http://127.0.0.1:9000")
///     .region("us-east-1")
///     .credentials("minioadmin", "minioadmin")
///     .prefix("prod/");
/// assert_eq!(config.bucket(), "teleportal");
/// assert!(config.is_path_style());
/// assert!(config.allows_http()); // the endpoint is plain HTTP
/// ```
///
/// # The URL form
/// `s3://BUCKET[/PREFIX]?endpoint=URL&region=REGION&path_style=BOOL&allow_http=BOOL&part_size=BYTES`,
/// every query parameter optional:
///
/// | parameter    | meaning                                                     | default            |
/// |--------------|-------------------------------------------------------------|--------------------|
/// | `endpoint`   | the service's base URL (MinIO, R2, Ceph, …); unset for AWS  | AWS                |
/// | `region`     | the signing region                                          | env, or `us-east-1`|
/// | `path_style` | `true`: `ENDPOINT/BUCKET/key`; `false`: virtual-hosted, `BUCKET.ENDPOINT/key` | `true` |
/// | `allow_http` | allow a plain-HTTP endpoint                                 | `true` when `endpoint` is `http://` |
/// | `part_size`  | multipart part size for files, in bytes (at least 5 MiB)    | 8 MiB              |
///
/// Credentials never go in the URL (URLs end up in logs): set them with
/// [`credentials`](S3Config::credentials) or the environment.
///
/// ```
/// use teleportal_s3::S3Config;
///
/// let config = S3Config::from_url(
///     "s3://teleportal/prod?endpoint=http://127.0.0.1:9000&region=us-east-1&path_style=true",
/// )?;
/// assert_eq!(config.bucket(), "teleportal");
/// assert_eq!(config.key_prefix(), "prod");
/// assert!(config.allows_http());
/// # Ok::<(), teleportal_storage::StorageError>(())
/// ```
#[derive(Clone)]
pub struct S3Config {
    bucket: String,
    prefix: String,
    endpoint: Option<String>,
    region: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    session_token: Option<String>,
    path_style: bool,
    allow_http: Option<bool>,
    part_size: usize,
}

impl S3Config {
    /// The smallest multipart part S3 accepts (every part but the last): 5 MiB.
    pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;
    /// The default multipart part size: 8 MiB. Files at least this large upload in parts.
    pub const DEFAULT_PART_SIZE: usize = 8 * 1024 * 1024;

    /// The bucket `bucket`, with everything else from the environment and the defaults.
    pub fn new(bucket: impl Into<String>) -> Self {
        S3Config {
            bucket: bucket.into(),
            prefix: String::new(),
            endpoint: None,
            region: None,
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
            path_style: true,
            allow_http: None,
            part_size: Self::DEFAULT_PART_SIZE,
        }
    }

    /// Parses the URL form (see the type's docs).
    ///
    /// # Errors
    /// [`StorageError::Backend`] (backend `"s3"`) naming what is wrong with the URL.
    pub fn from_url(url: &str) -> Result<Self, StorageError> {
        let invalid = |reason: String| StorageError::from(S3Error::Config { reason });
        let parsed =
            url::Url::parse(url).map_err(|e| invalid(format!("not a URL ({e}): {url:?}")))?;
        if parsed.scheme() != "s3" {
            return Err(invalid(format!(
                "the scheme must be s3://, not {}://",
                parsed.scheme()
            )));
        }
        let bucket = parsed
            .host_str()
            .filter(|b| !b.is_empty())
            .ok_or_else(|| invalid("the URL names no bucket".into()))?;
        let mut config = S3Config::new(bucket).prefix(parsed.path().trim_matches('/'));
        for (key, value) in parsed.query_pairs() {
            let flag = |value: &str| match value {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                other => Err(invalid(format!(
                    "{key} must be true or false, not {other:?}"
                ))),
            };
            config = match key.as_ref() {
                "endpoint" => config.endpoint(value.as_ref()),
                "region" => config.region(value.as_ref()),
                "path_style" => config.path_style(flag(&value)?),
                "allow_http" => config.allow_http(flag(&value)?),
                "part_size" => config.part_size(
                    value
                        .parse()
                        .map_err(|_| invalid(format!("part_size {value:?} is not a number")))?,
                ),
                other => return Err(invalid(format!("unknown parameter {other:?}"))),
            };
        }
        Ok(config)
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key prefix every object goes under (empty: the bucket's root).
    pub fn key_prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether requests are path-style (`ENDPOINT/BUCKET/key`) rather than virtual-hosted.
    pub fn is_path_style(&self) -> bool {
        self.path_style
    }

    /// Whether a plain-HTTP endpoint is allowed: as set, else whether the endpoint is
    /// `http://`.
    pub fn allows_http(&self) -> bool {
        self.allow_http.unwrap_or_else(|| {
            self.endpoint
                .as_deref()
                .is_some_and(|e| e.starts_with("http://"))
        })
    }

    /// The multipart part size for files.
    pub fn multipart_part_size(&self) -> usize {
        self.part_size
    }

    /// Puts every object under `prefix` (slashes at either end are ignored), so that several
    /// deployments share a bucket.
    pub fn prefix(mut self, prefix: impl AsRef<str>) -> Self {
        self.prefix = prefix.as_ref().trim_matches('/').to_owned();
        self
    }

    /// The service's base URL, for providers other than AWS (`http://127.0.0.1:9000` for a
    /// local MinIO).
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// The region requests are signed for.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Static credentials, instead of the environment's.
    pub fn credentials(
        mut self,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
    ) -> Self {
        self.access_key_id = Some(access_key_id.into());
        self.secret_access_key = Some(secret_access_key.into());
        self
    }

    /// A session token to go with [`credentials`](S3Config::credentials).
    pub fn session_token(mut self, token: impl Into<String>) -> Self {
        self.session_token = Some(token.into());
        self
    }

    /// Path-style requests (`true`, the default, which every S3-compatible service accepts)
    /// or virtual-hosted-style ones (`false`).
    pub fn path_style(mut self, path_style: bool) -> Self {
        self.path_style = path_style;
        self
    }

    /// Allows (or forbids) a plain-HTTP endpoint.
    pub fn allow_http(mut self, allow: bool) -> Self {
        self.allow_http = Some(allow);
        self
    }

    /// The multipart part size for files (raised to [`S3Config::MIN_PART_SIZE`] if smaller).
    /// Files of at least this many bytes upload in parts of this size.
    pub fn part_size(mut self, bytes: usize) -> Self {
        self.part_size = bytes.max(Self::MIN_PART_SIZE);
        self
    }

    /// The object store client this configuration describes, to share between an
    /// [`S3FileStorage`](crate::S3FileStorage) and an
    /// [`S3DocumentStorage`](crate::S3DocumentStorage) (each `with_store`).
    ///
    /// Conditional puts are on (`If-None-Match: *` and `If-Match: <etag>`): AWS S3, MinIO,
    /// Cloudflare R2 and Ceph support them.
    ///
    /// # Errors
    /// [`StorageError::Backend`] when the configuration is incomplete (no credentials found
    /// anywhere is only detected on the first request).
    pub fn object_store(&self) -> Result<Arc<dyn ObjectStore>, StorageError> {
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&self.bucket)
            .with_virtual_hosted_style_request(!self.path_style)
            .with_allow_http(self.allows_http());
        if let Some(endpoint) = &self.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(region) = &self.region {
            builder = builder.with_region(region);
        }
        if let Some(key) = &self.access_key_id {
            builder = builder.with_access_key_id(key);
        }
        if let Some(secret) = &self.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        if let Some(token) = &self.session_token {
            builder = builder.with_token(token);
        }
        let store = builder.build().map_err(S3Error::Build)?;
        Ok(Arc::new(store))
    }

    /// The prefix as an object store path.
    pub(crate) fn prefix_path(&self) -> Path {
        prefix_path(&self.prefix)
    }
}

/// `prefix` split at `/` into path segments (empty segments dropped).
pub(crate) fn prefix_path(prefix: &str) -> Path {
    Path::from_iter(prefix.split('/').filter(|s| !s.is_empty()))
}

impl fmt::Debug for S3Config {
    /// Everything but the secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .field("path_style", &self.path_style)
            .field("allow_http", &self.allows_http())
            .field("part_size", &self.part_size)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_sets_every_parameter() {
        let config = S3Config::from_url(
            "s3://bucket/a/b/?endpoint=http://127.0.0.1:9000&region=eu-west-1\
             &path_style=false&allow_http=false&part_size=6291456",
        )
        .expect("valid URL");
        assert_eq!(config.bucket(), "bucket");
        assert_eq!(config.key_prefix(), "a/b");
        assert_eq!(config.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(config.region.as_deref(), Some("eu-west-1"));
        assert!(!config.is_path_style());
        assert!(!config.allows_http());
        assert_eq!(config.multipart_part_size(), 6 * 1024 * 1024);
    }

    #[test]
    fn url_without_parameters_takes_the_defaults() {
        let config = S3Config::from_url("s3://bucket").expect("valid URL");
        assert_eq!(config.key_prefix(), "");
        assert!(config.is_path_style());
        assert!(!config.allows_http());
        assert_eq!(config.multipart_part_size(), S3Config::DEFAULT_PART_SIZE);
    }

    #[test]
    fn bad_urls_are_rejected() {
        for url in [
            "https://bucket",
            "s3://",
            "s3://bucket?path_style=maybe",
            "s3://bucket?part_size=big",
            "s3://bucket?secret=x",
        ] {
            assert!(S3Config::from_url(url).is_err(), "{url} was accepted");
        }
    }

    #[test]
    fn part_size_is_at_least_the_s3_minimum() {
        assert_eq!(
            S3Config::new("b").part_size(1).multipart_part_size(),
            S3Config::MIN_PART_SIZE
        );
    }

    #[test]
    fn debug_hides_the_secrets() {
        let config = S3Config::new("b")
            .credentials("key-id", "top-secret")
            .session_token("token-secret");
        let debug = format!("{config:?}");
        assert!(debug.contains("key-id"));
        assert!(!debug.contains("top-secret") && !debug.contains("token-secret"));
    }
}
