//! The JWT flags `serve` and `token` share, so a token minted with a flag set is accepted by a
//! server started with the same flags (or the same `TELEPORTAL_JWT_*` variables).

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, ValueEnum};
use teleportal_auth::TokenConfig;

use crate::Failure;

/// How tokens are signed and what they must say.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Tokens (JWT)")]
pub(crate) struct JwtArgs {
    /// HS256 shared secret. Prefer the environment variable: a flag shows in `ps`.
    #[arg(
        long,
        env = "TELEPORTAL_JWT_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    pub(crate) jwt_secret: Option<String>,
    /// PEM public key for RS256, ES256 or EdDSA tokens (the algorithm is read off the key
    /// unless --jwt-algorithm says it).
    #[arg(
        long,
        env = "TELEPORTAL_JWT_PUBLIC_KEY",
        value_name = "FILE",
        conflicts_with = "jwt_secret"
    )]
    pub(crate) jwt_public_key: Option<PathBuf>,
    /// The algorithm of --jwt-public-key.
    #[arg(
        long,
        env = "TELEPORTAL_JWT_ALGORITHM",
        value_enum,
        requires = "jwt_public_key"
    )]
    pub(crate) jwt_algorithm: Option<KeyAlgorithm>,
    /// The issuer (`iss`) tokens carry.
    #[arg(long, env = "TELEPORTAL_JWT_ISSUER", default_value = teleportal_auth::DEFAULT_ISSUER, value_name = "NAME")]
    pub(crate) jwt_issuer: String,
    /// The audience (`aud`) tokens carry.
    #[arg(long, env = "TELEPORTAL_JWT_AUDIENCE", default_value = teleportal_auth::DEFAULT_ISSUER, value_name = "NAME")]
    pub(crate) jwt_audience: String,
}

/// An asymmetric token algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum KeyAlgorithm {
    /// RSA with SHA-256.
    Rs256,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// Ed25519.
    Eddsa,
}

impl JwtArgs {
    /// The token configuration the flags describe, or `None` when tokens are off (no secret,
    /// no key).
    pub(crate) fn config(&self, leeway: Duration) -> Result<Option<TokenConfig>, Failure> {
        let config = if let Some(secret) = &self.jwt_secret {
            if secret.is_empty() {
                return Err(Failure::usage("--jwt-secret must not be empty"));
            }
            TokenConfig::new(secret)
        } else if let Some(path) = &self.jwt_public_key {
            verifier(path, self.jwt_algorithm)?
        } else {
            return Ok(None);
        };
        Ok(Some(
            config
                .with_issuer(&self.jwt_issuer)
                .with_audience(&self.jwt_audience)
                .with_leeway(leeway.as_secs()),
        ))
    }
}

/// A verifier for the PEM public key at `path`.
fn verifier(path: &Path, algorithm: Option<KeyAlgorithm>) -> Result<TokenConfig, Failure> {
    let pem = std::fs::read(path)
        .map_err(|e| Failure::usage(format!("--jwt-public-key {}: {e}", path.display())))?;
    let try_one = |algorithm| match algorithm {
        KeyAlgorithm::Rs256 => TokenConfig::rs256(&pem),
        KeyAlgorithm::Es256 => TokenConfig::es256(&pem),
        KeyAlgorithm::Eddsa => TokenConfig::eddsa(&pem),
    };
    let found = match algorithm {
        Some(algorithm) => try_one(algorithm).map_err(|e| e.to_string()),
        None => [
            KeyAlgorithm::Rs256,
            KeyAlgorithm::Es256,
            KeyAlgorithm::Eddsa,
        ]
        .into_iter()
        .find_map(|a| try_one(a).ok())
        .ok_or_else(|| "not a PEM RSA, P-256 or Ed25519 public key".to_owned()),
    };
    found.map_err(|e| Failure::usage(format!("--jwt-public-key {}: {e}", path.display())))
}
