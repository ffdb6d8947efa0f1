//! Building a [`TokenConfig`] from an HS256 secret or from PEM keys.

use jsonwebtoken::{DecodingKey, EncodingKey};

use super::{TokenAlgorithm, TokenConfig};
use crate::AuthError;

impl TokenConfig {
    /// A configuration signing and verifying with `secret` (the UTF-8 bytes of a string
    /// secret, as the reference uses them), with the reference's defaults.
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        let secret = secret.as_ref();
        Self::with_keys(
            TokenAlgorithm::Hs256,
            Some(EncodingKey::from_secret(secret)),
            DecodingKey::from_secret(secret),
        )
    }

    /// A verifier for RS256 tokens signed by the private half of `public_pem` (a PEM
    /// `PUBLIC KEY` or `RSA PUBLIC KEY`).
    ///
    /// # Errors
    /// [`AuthError::InvalidKey`] if the PEM is not an RSA public key.
    pub fn rs256(public_pem: impl AsRef<[u8]>) -> Result<Self, AuthError> {
        let decoding = DecodingKey::from_rsa_pem(public_pem.as_ref())
            .map_err(|e| invalid_key(TokenAlgorithm::Rs256, e))?;
        Ok(Self::with_keys(TokenAlgorithm::Rs256, None, decoding))
    }

    /// A verifier for ES256 tokens signed by the private half of `public_pem` (a PEM P-256
    /// `PUBLIC KEY`).
    ///
    /// # Errors
    /// [`AuthError::InvalidKey`] if the PEM is not an EC public key.
    pub fn es256(public_pem: impl AsRef<[u8]>) -> Result<Self, AuthError> {
        let decoding = DecodingKey::from_ec_pem(public_pem.as_ref())
            .map_err(|e| invalid_key(TokenAlgorithm::Es256, e))?;
        Ok(Self::with_keys(TokenAlgorithm::Es256, None, decoding))
    }

    /// A verifier for EdDSA tokens signed by the private half of `public_pem` (a PEM Ed25519
    /// `PUBLIC KEY`).
    ///
    /// # Errors
    /// [`AuthError::InvalidKey`] if the PEM is not an Ed25519 public key.
    pub fn eddsa(public_pem: impl AsRef<[u8]>) -> Result<Self, AuthError> {
        let decoding = DecodingKey::from_ed_pem(public_pem.as_ref())
            .map_err(|e| invalid_key(TokenAlgorithm::EdDsa, e))?;
        Ok(Self::with_keys(TokenAlgorithm::EdDsa, None, decoding))
    }

    /// Adds the private key (PEM, PKCS#8 `PRIVATE KEY`; PKCS#1 `RSA PRIVATE KEY` also for
    /// RS256) so that [`mint`](Self::mint) works on an asymmetric configuration. For HS256
    /// the secret given to [`new`](Self::new) already signs; this replaces nothing there and
    /// fails.
    ///
    /// The key pair is not cross-checked here: a mismatched pair mints tokens that
    /// [`verify`](Self::verify) refuses with [`AuthError::BadSignature`].
    ///
    /// # Errors
    /// [`AuthError::InvalidKey`] if the PEM is not a private key of this algorithm.
    pub fn with_signing_key(mut self, private_pem: impl AsRef<[u8]>) -> Result<Self, AuthError> {
        let pem = private_pem.as_ref();
        let key = match self.algorithm {
            TokenAlgorithm::Hs256 => {
                return Err(AuthError::InvalidKey {
                    algorithm: "HS256",
                    reason: "HS256 signs with the shared secret given to TokenConfig::new".into(),
                });
            }
            TokenAlgorithm::Rs256 => EncodingKey::from_rsa_pem(pem),
            TokenAlgorithm::Es256 => EncodingKey::from_ec_pem(pem),
            TokenAlgorithm::EdDsa => EncodingKey::from_ed_pem(pem),
        }
        .map_err(|e| invalid_key(self.algorithm, e))?;
        self.encoding = Some(key);
        Ok(self)
    }
}

fn invalid_key(algorithm: TokenAlgorithm, error: jsonwebtoken::errors::Error) -> AuthError {
    AuthError::InvalidKey {
        algorithm: algorithm.as_str(),
        reason: error.to_string(),
    }
}
