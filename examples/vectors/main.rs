//! Checks files of test vectors in the shared format against this implementation.
//!
//! ```text
//! cargo run -q --release --example vectors -- FILE...
//! ```
//!
//! For every vector: decode `hex` and compare with `fields`, re-encode and compare with `hex`
//! (or `canonical_hex` for decode-only vectors), check `message_id` where given, and expect an
//! error for negative vectors. Prints one line per failure and ends with `N passed, N failed`;
//! exits non-zero on any failure.

// Modules of one binary: `pub` marks what main uses, nothing is exported.
#![allow(unreachable_pub)]

mod crypto_merkle;
mod fixture;
mod formats;
mod harness;
mod token;
mod wire;

use std::process::ExitCode;

use harness::{Outcome, Vector};

fn check(v: &Vector) -> Outcome {
    match v.category.as_str() {
        "negative" => check_negative(v),
        "message" | "rpc" => wire::check_message(v),
        "lib0" => wire::check_lib0(v),
        "heartbeat" => wire::check_heartbeat(v),
        "framing" => wire::check_framing(v),
        "message_id" => wire::check_message_id(v),
        "y-protocols" => wire::check_y_message(v),
        "envelope" if v.fields.get("dictionary").is_some() => formats::check_sidecar(v),
        "envelope" => wire::check_envelope(v),
        "milestone" => formats::check_milestone(v),
        "attribution" => formats::check_attribution(v),
        "storage" if v.fields.get("chunks").is_some() => crypto_merkle::check_serialized_tree(v),
        "storage" => formats::check_versioned_bytes(v),
        "crypto" => crypto_merkle::check_crypto(v),
        "merkle" => crypto_merkle::check_merkle(v),
        "token" => token::check_token(v),
        "fixture" => fixture::check_fixture(v),
        "decode-only" => check_decode_only(v),
        other => Err(format!("unknown category {other:?}")),
    }
}

/// Decode-only vectors carry the `fields` shape of whatever structure they decode.
fn check_decode_only(v: &Vector) -> Outcome {
    let f = &v.fields;
    if f.get("messageType").is_some() {
        wire::check_y_message(v)
    } else if f.get("type").is_some() && f.get("document").is_some() {
        wire::check_message(v)
    } else if f.get("wireVersion").is_some() {
        wire::check_envelope(v)
    } else if f.get("kind").is_some() {
        wire::check_lib0(v)
    } else if f.get("createdBy").is_some() {
        formats::check_milestone(v)
    } else {
        Err("decode-only vector of an unrecognised shape".into())
    }
}

fn check_negative(v: &Vector) -> Outcome {
    if let Some(encoder) = v.fields.get("encoder").and_then(|e| e.as_str()) {
        return wire::check_refused_encoding(v, encoder);
    }
    let decoder = v
        .fields
        .get("decoder")
        .and_then(|d| d.as_str())
        .ok_or("negative vector without fields.decoder")?;
    let bytes = v.bytes()?;
    let result = wire::decode_with(decoder, bytes.clone())
        .or_else(|| formats::decode_with(decoder, bytes.clone()))
        .ok_or_else(|| format!("no decoder named {decoder:?}"))?;
    match result {
        Ok(()) => Err(format!(
            "{decoder} decoder accepted bytes that must be rejected"
        )),
        Err(_) => Ok(()),
    }
}

fn main() -> ExitCode {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        eprintln!("usage: vectors FILE...");
        return ExitCode::from(2);
    }
    let (mut passed, mut failed) = (0usize, 0usize);
    for file in &files {
        let vectors = match harness::load(file) {
            Ok(v) => v,
            Err(e) => {
                println!("{file}: cannot read vectors: {e}");
                failed += 1;
                continue;
            }
        };
        for v in &vectors {
            // A panic is a failure of that vector, not of the run.
            let outcome = std::panic::catch_unwind(|| check(v))
                .unwrap_or_else(|_| Err("panicked".into()))
                .and_then(|()| harness::check_message_id(v));
            match outcome {
                Ok(()) => passed += 1,
                Err(e) => {
                    failed += 1;
                    println!("FAIL {file}: {}: {e}", v.name);
                }
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
