//! JWT vectors (spec §15): minting, verification, rejections and the permission matrix.

use serde_json::Value;
use teleportal_auth::{
    AuthError, DocumentAccess, Permission, TokenClaims, TokenConfig, has_document_permission,
};

use crate::harness::{Outcome, Vector, same};

pub fn check_token(v: &Vector) -> Outcome {
    if v.fields.get("payloads").is_some() {
        check_permission_matrix(v)
    } else if v.fields.get("token").is_some() {
        check_rejected(v)
    } else {
        check_minted(v)
    }
}

fn str_field<'a>(v: &'a Vector, key: &str) -> Result<&'a str, String> {
    v.field(key)?
        .as_str()
        .ok_or_else(|| format!("fields.{key} must be a string"))
}

fn u64_field(v: &Vector, key: &str) -> Result<u64, String> {
    v.field(key)?
        .as_u64()
        .ok_or_else(|| format!("fields.{key} must be an unsigned integer"))
}

fn config(v: &Vector) -> Result<TokenConfig, String> {
    Ok(TokenConfig::new(str_field(v, "secret")?)
        .with_issuer(str_field(v, "issuer")?)
        .with_audience(str_field(v, "audience")?))
}

fn document_access(value: &Value) -> Result<Vec<DocumentAccess>, String> {
    serde_json::from_value(value.clone()).map_err(|e| format!("bad documentAccess: {e}"))
}

/// `hex` is the UTF-8 of the token; minting from the fields gives exactly it, its header and
/// payload are `expected`'s, and verifying at `now` gives the payload back as claims.
fn check_minted(v: &Vector) -> Outcome {
    let expected_token = v
        .expected("token")?
        .as_str()
        .ok_or("expected.token must be a string")?;
    let hex_token = String::from_utf8(v.bytes()?.to_vec()).map_err(|e| e.to_string())?;
    same("hex as UTF-8", &hex_token.as_str(), &expected_token)?;

    let now = u64_field(v, "now")?;
    let config = config(v)?.with_lifetime(u64_field(v, "expiresIn")?);
    let access = document_access(v.field("documentAccess")?)?;
    let claims = config.claims(
        str_field(v, "userId")?,
        str_field(v, "room")?,
        Some(access),
        now,
    );
    let minted = config
        .mint(&claims)
        .map_err(|e| format!("mint failed: {e}"))?;
    same("minted token", &minted.as_str(), &expected_token)?;

    let mut parts = minted.split('.');
    let mut segment_json = |what: &str| -> Result<Value, String> {
        let segment = parts.next().ok_or_else(|| format!("token has no {what}"))?;
        let bytes = base64_url_decode(segment).ok_or_else(|| format!("{what} is not base64url"))?;
        serde_json::from_slice(&bytes).map_err(|e| format!("{what} is not JSON: {e}"))
    };
    // Order-sensitive comparisons: the vectors' JSON keeps key order, and so do these maps.
    same_ordered("header", &segment_json("header")?, v.expected("header")?)?;
    let payload = segment_json("payload")?;
    same_ordered("payload", &payload, v.expected("payload")?)?;

    let verified = config
        .verify(expected_token, now)
        .map_err(|e| format!("verification failed: {e}"))?;
    same("verified claims", &verified, &claims)?;
    let expected_claims: TokenClaims = serde_json::from_value(v.expected("payload")?.clone())
        .map_err(|e| format!("expected.payload is not token claims: {e}"))?;
    same(
        "verified claims vs expected.payload",
        &verified,
        &expected_claims,
    )
}

/// Key order matters for minted bytes, so compare the serialized forms too.
fn same_ordered(what: &str, actual: &Value, expected: &Value) -> Outcome {
    same(what, &actual.to_string(), &expected.to_string())
}

/// Decodes unpadded base64url (the JWT segment alphabet) without pulling in a base64 crate.
fn base64_url_decode(s: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        }))
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        acc = (acc << 6) | value(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from(acc >> bits).ok()?);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// `jwt_reject_*`: verifying `token` with the given secret, issuer and audience at `now` fails,
/// and, where the vector's name says why, for that reason. (The jose message is in the
/// vector's top-level `error`, which the harness does not keep; the spec says to match on
/// "fails", not on the text.)
fn check_rejected(v: &Vector) -> Outcome {
    let token = str_field(v, "token")?;
    same_utf8_hex(v, token)?;
    let err = match config(v)?.verify(token, u64_field(v, "now")?) {
        Ok(claims) => {
            return Err(format!(
                "accepted a token that must be rejected: {claims:?}"
            ));
        }
        Err(e) => e,
    };
    let reason = v.name.strip_prefix("jwt_reject_").unwrap_or_default();
    let same_reason = match reason {
        "wrong_secret" | "tampered_payload" => matches!(err, AuthError::BadSignature),
        "wrong_audience" => matches!(err, AuthError::WrongAudience { .. }),
        "wrong_issuer" => matches!(err, AuthError::WrongIssuer { .. }),
        "expired" => matches!(err, AuthError::Expired { .. }),
        "hs512" => matches!(err, AuthError::AlgorithmNotAllowed { .. }),
        "alg_none" | "none" => matches!(err, AuthError::UnsignedToken),
        _ => true,
    };
    if same_reason {
        Ok(())
    } else {
        Err(format!("rejected for another reason than {reason}: {err}"))
    }
}

fn same_utf8_hex(v: &Vector, token: &str) -> Outcome {
    crate::harness::same_hex("hex", token.as_bytes(), &v.hex)
}

/// Every `{payload, document, permission, allowed}` case of `expected.cases`.
fn check_permission_matrix(v: &Vector) -> Outcome {
    let payloads = v
        .field("payloads")?
        .as_object()
        .ok_or("fields.payloads must be an object")?;
    let cases = v
        .expected("cases")?
        .as_array()
        .ok_or("expected.cases must be an array")?;
    let mut failures = Vec::new();
    for case in cases {
        let get = |k: &str| {
            case.get(k)
                .ok_or_else(|| format!("case without {k}: {case}"))
        };
        let name = get("payload")?
            .as_str()
            .ok_or("case payload must be a string")?;
        let document = get("document")?
            .as_str()
            .ok_or("case document must be a string")?;
        let permission = get("permission")?
            .as_str()
            .ok_or("case permission must be a string")?;
        let allowed = get("allowed")?
            .as_bool()
            .ok_or("case allowed must be a bool")?;
        let payload = payloads
            .get(name)
            .ok_or_else(|| format!("no payload {name:?}"))?;
        let permission = Permission::from_name(permission)
            .ok_or_else(|| format!("unknown permission {permission:?}"))?;
        // The matrix payloads carry only userId, room and documentAccess: the check reads no
        // other claim, so the rest is filled in.
        let claims = TokenClaims {
            user_id: payload
                .get("userId")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .into(),
            room: payload
                .get("room")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .into(),
            document_access: payload
                .get("documentAccess")
                .map(document_access)
                .transpose()?,
            exp: 0,
            iat: None,
            iss: String::new(),
            aud: String::new(),
        };
        if has_document_permission(&claims, document, permission) != allowed {
            failures.push(format!(
                "{name}/{document:?}/{permission}: expected {allowed}"
            ));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} of {} cases differ: {}",
            failures.len(),
            cases.len(),
            failures.join(", ")
        ))
    }
}
