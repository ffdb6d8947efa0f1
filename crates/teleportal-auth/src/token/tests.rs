//! Minting and verifying tokens, HS256 and asymmetric, against the reference's vectors.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};

use super::*;
use crate::{AuthError, Permission};

const SECRET: &str = "test-secret-please-change";
const NOW: u64 = 1_700_000_000;

fn config() -> TokenConfig {
    TokenConfig::new(SECRET)
}

fn example_claims() -> TokenClaims {
    config().claims(
        "user-alice",
        "room-1",
        Some(vec![
            DocumentAccess::new("room-1/*", &[Permission::Read, Permission::Write]),
            DocumentAccess::new("!room-1/private", &[]),
        ]),
        NOW,
    )
}

fn b64(json: &str) -> String {
    URL_SAFE_NO_PAD.encode(json)
}

/// A token with the given header and payload JSON, signed with HS256 over `SECRET`
/// whatever the header says.
fn signed(header: &str, payload: &str) -> String {
    let message = format!("{}.{}", b64(header), b64(payload));
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::HS256)
        .expect("HMAC signing does not fail");
    format!("{message}.{signature}")
}

#[test]
fn minted_token_matches_reference_bytes() {
    let token = config().mint(&example_claims()).unwrap();
    assert_eq!(
        token,
        "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VySWQiOiJ1c2VyLWFsaWNlIiwicm9vbSI6InJvb20tMSIsImRvY3VtZW50QWNjZXNzIjpbeyJwYXR0ZXJuIjoicm9vbS0xLyoiLCJwZXJtaXNzaW9ucyI6WyJyZWFkIiwid3JpdGUiXX0seyJwYXR0ZXJuIjoiIXJvb20tMS9wcml2YXRlIiwicGVybWlzc2lvbnMiOltdfV0sImV4cCI6MTcwMDAwMzYwMCwiaWF0IjoxNzAwMDAwMDAwLCJpc3MiOiJ0ZWxlcG9ydGFsIiwiYXVkIjoidGVsZXBvcnRhbCJ9.bYyYEDMfMUP_5M9Uc8NlN-NJ2yMLA2SjokOckJW-lnM"
    );
}

#[test]
fn minted_token_verifies_to_its_claims() {
    let claims = example_claims();
    let token = config().mint(&claims).unwrap();
    assert_eq!(config().verify(&token, NOW).unwrap(), claims);
}

#[test]
fn token_is_valid_until_the_second_before_exp() {
    let token = config().mint(&example_claims()).unwrap();
    assert!(config().verify(&token, NOW + 3599).is_ok());
}

#[test]
fn token_at_exp_is_expired() {
    let token = config().mint(&example_claims()).unwrap();
    let err = config().verify(&token, NOW + 3600).unwrap_err();
    assert!(matches!(
        err,
        AuthError::Expired {
            exp: 1_700_003_600,
            now: 1_700_003_600
        }
    ));
}

#[test]
fn leeway_extends_expiry() {
    let token = config().mint(&example_claims()).unwrap();
    assert!(config().with_leeway(5).verify(&token, NOW + 3604).is_ok());
}

#[test]
fn wrong_secret_is_a_bad_signature() {
    let token = config().mint(&example_claims()).unwrap();
    let err = TokenConfig::new("wrong").verify(&token, NOW).unwrap_err();
    assert!(matches!(err, AuthError::BadSignature));
}

#[test]
fn tampered_payload_is_a_bad_signature() {
    let token = config().mint(&example_claims()).unwrap();
    let mut claims = example_claims();
    claims.user_id = "mallory".into();
    let forged = config().mint(&claims).unwrap();
    let mut parts: Vec<&str> = forged.split('.').collect();
    parts[2] = token.split('.').nth(2).unwrap();
    let err = config().verify(&parts.join("."), NOW).unwrap_err();
    assert!(matches!(err, AuthError::BadSignature));
}

#[test]
fn wrong_audience_is_refused() {
    let token = config().mint(&example_claims()).unwrap();
    let err = config().with_audience("x").verify(&token, NOW).unwrap_err();
    assert!(matches!(err, AuthError::WrongAudience { expected } if expected == "x"));
}

#[test]
fn wrong_issuer_is_refused() {
    let token = config().mint(&example_claims()).unwrap();
    let err = config()
        .with_issuer("other")
        .verify(&token, NOW)
        .unwrap_err();
    assert!(matches!(err, AuthError::WrongIssuer { expected } if expected == "other"));
}

#[test]
fn alg_none_is_refused() {
    let payload = serde_json::to_string(&example_claims()).unwrap();
    let token = format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64(&payload));
    let err = config().verify(&token, NOW).unwrap_err();
    assert!(matches!(err, AuthError::UnsignedToken));
}

#[test]
fn hs512_is_refused_even_with_a_valid_signature() {
    // From the shared vector jwt_reject_hs512: HS512 over the right secret.
    let token = "eyJhbGciOiJIUzUxMiJ9.eyJ1c2VySWQiOiJ1Iiwicm9vbSI6InIiLCJpYXQiOjE3MDAwMDAwMDAsImV4cCI6MTcwMDAwMDA2MCwiaXNzIjoidGVsZXBvcnRhbCIsImF1ZCI6InRlbGVwb3J0YWwifQ.zCII_-E4IAJfSlYr92b22vGO_-sO99i37bkKrtOG3cL7Eu-NQvJ5A_rUlvoaDxJZUznX0A-bXy_GYy8q25n40A";
    let err = config().verify(token, NOW).unwrap_err();
    assert!(
        matches!(err, AuthError::AlgorithmNotAllowed { alg, expected: "HS256" } if alg == "HS512")
    );
}

#[test]
fn crit_header_is_refused() {
    let payload = serde_json::to_string(&example_claims()).unwrap();
    let token = signed(r#"{"alg":"HS256","crit":["b64"],"b64":false}"#, &payload);
    let err = config().verify(&token, NOW).unwrap_err();
    assert!(matches!(err, AuthError::Malformed { .. }));
}

#[test]
fn header_with_typ_is_accepted() {
    let payload = serde_json::to_string(&example_claims()).unwrap();
    let token = signed(r#"{"alg":"HS256","typ":"JWT"}"#, &payload);
    assert_eq!(config().verify(&token, NOW).unwrap(), example_claims());
}

#[test]
fn missing_exp_is_refused() {
    let token = signed(
        r#"{"alg":"HS256"}"#,
        r#"{"userId":"u","room":"r","iss":"teleportal","aud":"teleportal"}"#,
    );
    let err = config().verify(&token, NOW).unwrap_err();
    assert!(matches!(err, AuthError::MissingClaim { claim: "exp" }));
}

#[test]
fn missing_audience_is_refused() {
    let token = signed(
        r#"{"alg":"HS256"}"#,
        r#"{"userId":"u","room":"r","exp":1700000060,"iss":"teleportal"}"#,
    );
    let err = config().verify(&token, NOW).unwrap_err();
    assert!(matches!(err, AuthError::MissingClaim { claim: "aud" }));
}

#[test]
fn future_nbf_is_refused() {
    let token = signed(
        r#"{"alg":"HS256"}"#,
        r#"{"userId":"u","room":"r","exp":1700000060,"nbf":1700000001,"iss":"teleportal","aud":"teleportal"}"#,
    );
    let err = config().verify(&token, NOW).unwrap_err();
    assert!(matches!(
        err,
        AuthError::NotYetValid {
            nbf: 1_700_000_001,
            now: NOW
        }
    ));
    assert!(config().verify(&token, NOW + 1).is_ok());
}

#[test]
fn claims_of_the_wrong_type_are_malformed() {
    let token = signed(
        r#"{"alg":"HS256"}"#,
        r#"{"userId":42,"room":"r","exp":1700000060,"iss":"teleportal","aud":"teleportal"}"#,
    );
    let err = config().verify(&token, NOW).unwrap_err();
    assert!(matches!(err, AuthError::Malformed { .. }));
}

#[test]
fn absent_room_and_document_access_read_as_defaults() {
    let token = signed(
        r#"{"alg":"HS256"}"#,
        r#"{"userId":"u","exp":1700000060,"iss":"teleportal","aud":"teleportal"}"#,
    );
    let claims = config().verify(&token, NOW).unwrap();
    assert_eq!(claims.room, "");
    assert_eq!(claims.document_access, None);
    assert_eq!(claims.iat, None);
}

#[test]
fn garbage_is_malformed_not_a_panic() {
    for token in [
        "",
        ".",
        "..",
        "a.b.c.d",
        "!!!.e30.",
        "e30.e30.",
        "bnVsbA.e30.",
        "eyJhbGciOiJIUzI1NiJ9.!!!.abc",
        "eyJhbGciOiJIUzI1NiJ9.e30.!!!",
    ] {
        let err = config().verify(token, NOW).unwrap_err();
        assert!(
            matches!(err, AuthError::Malformed { .. } | AuthError::BadSignature),
            "{token:?} gave {err:?}"
        );
    }
}

const RSA_PRIVATE: &str = include_str!("../../tests/keys/rsa-private.pem");
const RSA_PUBLIC: &str = include_str!("../../tests/keys/rsa-public.pem");
const RSA_OTHER_PUBLIC: &str = include_str!("../../tests/keys/rsa-other-public.pem");
const EC_PRIVATE: &str = include_str!("../../tests/keys/ec-private.pem");
const EC_PUBLIC: &str = include_str!("../../tests/keys/ec-public.pem");
const ED_PRIVATE: &str = include_str!("../../tests/keys/ed25519-private.pem");
const ED_PUBLIC: &str = include_str!("../../tests/keys/ed25519-public.pem");

fn asymmetric() -> [(TokenConfig, &'static str); 3] {
    [
        (
            TokenConfig::rs256(RSA_PUBLIC)
                .unwrap()
                .with_signing_key(RSA_PRIVATE)
                .unwrap(),
            "RS256",
        ),
        (
            TokenConfig::es256(EC_PUBLIC)
                .unwrap()
                .with_signing_key(EC_PRIVATE)
                .unwrap(),
            "ES256",
        ),
        (
            TokenConfig::eddsa(ED_PUBLIC)
                .unwrap()
                .with_signing_key(ED_PRIVATE)
                .unwrap(),
            "EdDSA",
        ),
    ]
}

/// Flips one character of segment `index` to another base64url character.
fn tamper(token: &str, index: usize) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let segment = &mut parts[index];
    // The first character carries six whole bits, so changing it changes the bytes.
    let first = if segment.starts_with('A') { "B" } else { "A" };
    segment.replace_range(0..1, first);
    parts.join(".")
}

#[test]
fn asymmetric_tokens_mint_and_verify_with_their_header() {
    for (config, alg) in asymmetric() {
        let token = config.mint(&example_claims()).unwrap();
        let header = URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap();
        assert_eq!(header, format!(r#"{{"alg":"{alg}"}}"#).as_bytes(), "{alg}");
        assert_eq!(
            config.verify(&token, NOW).unwrap(),
            example_claims(),
            "{alg}"
        );
    }
}

#[test]
fn tampered_signature_is_a_bad_signature_for_every_algorithm() {
    let mut configs = asymmetric().to_vec();
    configs.push((config(), "HS256"));
    for (config, alg) in configs {
        let token = tamper(&config.mint(&example_claims()).unwrap(), 2);
        let err = config.verify(&token, NOW).unwrap_err();
        assert!(matches!(err, AuthError::BadSignature), "{alg}: {err:?}");
    }
}

#[test]
fn tampered_payload_is_a_bad_signature_for_every_algorithm() {
    for (config, alg) in asymmetric() {
        let token = config.mint(&example_claims()).unwrap();
        let mut claims = example_claims();
        claims.document_access = None;
        let forged_payload = config.mint(&claims).unwrap();
        let mut parts: Vec<&str> = token.split('.').collect();
        parts[1] = forged_payload.split('.').nth(1).unwrap();
        let err = config.verify(&parts.join("."), NOW).unwrap_err();
        assert!(matches!(err, AuthError::BadSignature), "{alg}: {err:?}");
    }
}

#[test]
fn token_from_another_key_pair_is_a_bad_signature() {
    let (signer, _) = asymmetric().into_iter().next().unwrap();
    let token = signer.mint(&example_claims()).unwrap();
    let other = TokenConfig::rs256(RSA_OTHER_PUBLIC).unwrap();
    assert!(matches!(
        other.verify(&token, NOW).unwrap_err(),
        AuthError::BadSignature
    ));
}

#[test]
fn hs256_token_keyed_with_the_public_key_is_refused_by_an_rs256_verifier() {
    // The algorithm confusion attack: sign HS256 using the verifier's public key as the
    // HMAC secret and hope the verifier follows the header.
    let forged = TokenConfig::new(RSA_PUBLIC)
        .mint(&example_claims())
        .unwrap();
    let err = TokenConfig::rs256(RSA_PUBLIC)
        .unwrap()
        .verify(&forged, NOW)
        .unwrap_err();
    assert!(
        matches!(err, AuthError::AlgorithmNotAllowed { ref alg, expected: "RS256" } if alg == "HS256"),
        "{err:?}"
    );
}

#[test]
fn es256_token_is_refused_by_an_eddsa_verifier() {
    let (es, _) = asymmetric().into_iter().nth(1).unwrap();
    let token = es.mint(&example_claims()).unwrap();
    let err = TokenConfig::eddsa(ED_PUBLIC)
        .unwrap()
        .verify(&token, NOW)
        .unwrap_err();
    assert!(matches!(
        err,
        AuthError::AlgorithmNotAllowed {
            expected: "EdDSA",
            ..
        }
    ));
}

#[test]
fn alg_none_in_any_casing_is_unsigned() {
    let payload = serde_json::to_string(&example_claims()).unwrap();
    for alg in ["none", "None", "NONE"] {
        let token = format!(
            "{}.{}.",
            b64(&format!(r#"{{"alg":"{alg}"}}"#)),
            b64(&payload)
        );
        let err = TokenConfig::rs256(RSA_PUBLIC)
            .unwrap()
            .verify(&token, NOW)
            .unwrap_err();
        assert!(matches!(err, AuthError::UnsignedToken), "{alg}");
    }
}

#[test]
fn asymmetric_expiry_and_audience_are_checked_too() {
    for (config, alg) in asymmetric() {
        let token = config.mint(&example_claims()).unwrap();
        assert!(
            matches!(
                config.verify(&token, NOW + 3600),
                Err(AuthError::Expired { .. })
            ),
            "{alg}"
        );
        let other = config.clone().with_audience("elsewhere");
        assert!(
            matches!(
                other.verify(&token, NOW),
                Err(AuthError::WrongAudience { .. })
            ),
            "{alg}"
        );
    }
}

#[test]
fn verifier_without_private_key_cannot_mint() {
    let err = TokenConfig::es256(EC_PUBLIC)
        .unwrap()
        .mint(&example_claims())
        .unwrap_err();
    assert!(matches!(
        err,
        AuthError::NoSigningKey { algorithm: "ES256" }
    ));
}

#[test]
fn wrong_kind_of_pem_is_an_invalid_key() {
    assert!(matches!(
        TokenConfig::rs256(EC_PUBLIC),
        Err(AuthError::InvalidKey {
            algorithm: "RS256",
            ..
        })
    ));
    assert!(matches!(
        TokenConfig::eddsa("not a pem"),
        Err(AuthError::InvalidKey {
            algorithm: "EdDSA",
            ..
        })
    ));
    assert!(matches!(
        config().with_signing_key(EC_PRIVATE),
        Err(AuthError::InvalidKey {
            algorithm: "HS256",
            ..
        })
    ));
}

#[test]
fn tampered_signature_is_a_bad_signature() {
    let token = tamper(&config().mint(&example_claims()).unwrap(), 2);
    assert!(matches!(
        config().verify(&token, NOW).unwrap_err(),
        AuthError::BadSignature
    ));
}

#[test]
fn debug_does_not_print_the_secret() {
    assert!(!format!("{:?}", config()).contains(SECRET));
}
