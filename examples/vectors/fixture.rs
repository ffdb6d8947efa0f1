//! Yjs fixture vectors (spec §20 `fixture`) and the derived document checks of y-protocols
//! sync messages (spec §21 `expected.content`, `expected.remoteStateVector`).
//!
//! A `yrs::Doc` stands in for a client here; the library crates work on encoded updates.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;
use serde_json::Value;
use yrs::types::ToJson;
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Any, Doc, GetString, Number, ReadTxn, StateVector, Text, Transact, Update};

use crate::harness::{Outcome, Vector, json_bytes, same, same_hex};

/// A state vector in a comparable, printable form: client id → clock.
type Clocks = BTreeMap<u64, u32>;

/// What an update fixture produced, for the state-vector fixture of the same document
/// (`fixture_X_update_v1`/`_v2` ↔ `fixture_X_state_vector`). Update fixtures come first in
/// the file; a state-vector fixture without a checked update is compared with its own fields
/// only.
static UPDATE_STATES: Mutex<BTreeMap<String, (Clocks, Value)>> = Mutex::new(BTreeMap::new());

pub fn check_fixture(v: &Vector) -> Outcome {
    let format = v
        .field("format")?
        .as_str()
        .ok_or("fields.format must be a string")?;
    let content = v.field("content")?;
    let bytes = v.bytes()?;
    match format {
        "yjs-update-v1" | "yjs-update-v2" => {
            let v2 = format == "yjs-update-v2";
            let doc = doc_from_update(&bytes, v2)?;
            check_content(&doc, content, true)?;
            // yrs writes the same bytes as yjs for every update fixture (clients in
            // descending order, the same struct and delete-set layout, and the same V2
            // column encoders), so the round trip is checked byte for byte.
            let reencoded = {
                let txn = doc.transact();
                if v2 {
                    txn.encode_state_as_update_v2(&StateVector::default())
                } else {
                    txn.encode_state_as_update_v1(&StateVector::default())
                }
            };
            same_hex("re-encoded document state", &reencoded, &v.hex)?;
            if let Some(stem) = stem(&v.name, &["_update_v1", "_update_v2"]) {
                let state = (clocks(&doc.transact().state_vector()), content.clone());
                UPDATE_STATES
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(stem.to_owned(), state);
            }
            Ok(())
        }
        "yjs-state-vector" => {
            let sv = StateVector::decode_v1(&bytes).map_err(|e| format!("decode failed: {e}"))?;
            let expected = clocks_from_json(v.field("stateVector")?)?;
            same("decoded state vector", &clocks(&sv), &expected)?;
            // yrs keeps a state vector in a hash map, so its encoding lists clients in hash
            // order while yjs lists them in the order the document first saw them: compare
            // bytes only where the order cannot differ, else the decoded re-encoding.
            let reencoded = sv.encode_v1();
            if sv.len() <= 1 {
                same_hex("re-encoded state vector", &reencoded, &v.hex)?;
            } else {
                let back = StateVector::decode_v1(&reencoded).map_err(|e| e.to_string())?;
                same(
                    "re-encoded state vector, decoded",
                    &clocks(&back),
                    &expected,
                )?;
                same(
                    "re-encoded state vector length",
                    &reencoded.len(),
                    &bytes.len(),
                )?;
            }
            let recorded = stem(&v.name, &["_state_vector"]).and_then(|stem| {
                let states = UPDATE_STATES.lock().unwrap_or_else(PoisonError::into_inner);
                states.get(stem).cloned()
            });
            if let Some((update_clocks, update_content)) = recorded {
                same(
                    "state vector of the update fixture's doc",
                    &update_clocks,
                    &expected,
                )?;
                if !json_eq(&update_content, content) {
                    return Err(format!(
                        "update fixture content {update_content}, this vector says {content}"
                    ));
                }
            }
            Ok(())
        }
        other => Err(format!("unknown fixture format {other:?}")),
    }
}

/// `expected.content`: the document after applying `data` (V1) to an empty doc.
/// `expected.remoteStateVector`: `data` is the diff answering that state vector.
pub fn check_y_expected(v: &Vector, data: &Bytes) -> Outcome {
    let mut checked = false;
    if let Ok(content) = v.expected("content") {
        let doc = doc_from_update(data, false)?;
        check_content(&doc, content, false)?;
        checked = true;
    }
    if let Ok(remote) = v.expected("remoteStateVector") {
        check_diff(data, &json_bytes(remote)?)?;
        checked = true;
    }
    if checked {
        Ok(())
    } else {
        Err("expected holds neither content nor remoteStateVector".into())
    }
}

/// The vectors do not include the document the diff was computed from, so instead of
/// recomputing the diff this checks that it is one: it starts, for every client, exactly at the
/// remote's clock (nothing the remote has, no gap), and applied on top of a document at that
/// state vector it integrates completely, advancing the state vector by what it carries.
fn check_diff(data: &[u8], remote_sv: &[u8]) -> Outcome {
    let remote = StateVector::decode_v1(remote_sv).map_err(|e| format!("bad state vector: {e}"))?;
    let update = Update::decode_v1(data).map_err(|e| format!("diff does not decode: {e}"))?;
    // What the diff inserts, per client: one contiguous clock range starting where the remote
    // stops. (`Update::state_vector` is no help: it is empty unless a client starts at 0.)
    let mut after = clocks(&remote);
    for (client, ranges) in update.insertions(true).iter() {
        let ranges: Vec<_> = ranges.iter().collect();
        let [range] = ranges.as_slice() else {
            return Err(format!(
                "diff has {} clock ranges for client {client}",
                ranges.len()
            ));
        };
        same(
            &format!("diff start for client {client}"),
            &range.start,
            &remote.get(client),
        )?;
        after.insert(client.get(), range.end);
    }

    // A stand-in document at exactly `remote`: each client typed `clock` characters into the
    // text `content`. The diff's first item has its left origin at the last of them.
    let base = Doc::new();
    for (&client, &clock) in &clocks(&remote) {
        let author = Doc::with_client_id(client);
        let text = author.get_or_insert_text("content");
        let mut txn = author.transact_mut();
        let len = usize::try_from(clock).map_err(|e| e.to_string())?;
        text.push(&mut txn, &"x".repeat(len));
        let update = txn.encode_update_v1();
        drop(txn);
        apply(
            &base,
            Update::decode_v1(&update).map_err(|e| e.to_string())?,
        )?;
    }
    same(
        "stand-in document state",
        &clocks(&base.transact().state_vector()),
        &clocks(&remote),
    )?;
    apply(&base, update)?;
    let state = clocks(&base.transact().state_vector());
    same("state after applying the diff", &state, &after)
}

/// `name` without one of `suffixes`.
fn stem<'a>(name: &'a str, suffixes: &[&str]) -> Option<&'a str> {
    suffixes.iter().find_map(|s| name.strip_suffix(s))
}

fn doc_from_update(bytes: &[u8], v2: bool) -> Result<Doc, String> {
    let update = if v2 {
        Update::decode_v2(bytes)
    } else {
        Update::decode_v1(bytes)
    }
    .map_err(|e| format!("update does not decode: {e}"))?;
    let doc = Doc::new();
    apply(&doc, update)?;
    Ok(doc)
}

/// Applies `update`, requiring that nothing is left waiting for missing structs or deletes.
fn apply(doc: &Doc, update: Update) -> Outcome {
    let mut txn = doc.transact_mut();
    txn.apply_update(update)
        .map_err(|e| format!("apply failed: {e}"))?;
    let store = txn.store();
    if store.pending_update().is_some() || store.pending_ds().is_some() {
        return Err("update left structs or deletions pending (missing dependencies)".into());
    }
    Ok(())
}

/// Compares every root type named in `expected` (root name → JSON) with the document, and
/// requires that the document has no other root and, with `all_present` (fixtures list exactly
/// the document's roots, while y-protocols' `expected.content` always lists `content`, `meta`
/// and `items`), that every listed root exists. The JSON type says the Yjs type: a string is
/// a Y.Text, an object a Y.Map, an array a Y.Array.
fn check_content(doc: &Doc, expected: &Value, all_present: bool) -> Outcome {
    let expected = expected.as_object().ok_or("content must be an object")?;
    let roots: Vec<String> = doc
        .transact()
        .root_refs()
        .map(|(name, _)| name.to_owned())
        .collect();
    if let Some(extra) = roots
        .iter()
        .find(|name| !expected.contains_key(name.as_str()))
    {
        return Err(format!(
            "document has a root {extra:?} the vector does not list"
        ));
    }
    if let Some(missing) = expected
        .keys()
        .find(|name| all_present && !roots.contains(name))
    {
        return Err(format!("document has no root {missing:?}"));
    }
    for (name, want) in expected {
        let got = match want {
            Value::String(_) => {
                let text = doc.get_or_insert_text(name.as_str());
                Value::String(text.get_string(&doc.transact()))
            }
            Value::Object(_) => {
                let map = doc.get_or_insert_map(name.as_str());
                any_to_json(&map.to_json(&doc.transact()))
            }
            Value::Array(_) => {
                let array = doc.get_or_insert_array(name.as_str());
                any_to_json(&array.to_json(&doc.transact()))
            }
            other => {
                return Err(format!(
                    "content.{name} is not a string, object or array: {other}"
                ));
            }
        };
        if !json_eq(&got, want) {
            return Err(format!("content.{name}: got {got}, expected {want}"));
        }
    }
    Ok(())
}

fn any_to_json(any: &Any) -> Value {
    match any {
        Any::Null | Any::Undefined => Value::Null,
        Any::Bool(b) => Value::Bool(*b),
        Any::Number(Number::Int(i)) => Value::from(*i),
        Any::Number(Number::Float(f)) => {
            serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
        }
        Any::String(s) => Value::String(s.to_string()),
        Any::Buffer(b) => serde_json::json!({ "$bytes": hex::encode(b) }),
        Any::Array(items) => Value::Array(items.iter().map(any_to_json).collect()),
        Any::Map(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), any_to_json(v)))
                .collect(),
        ),
    }
}

/// JSON equality where numbers compare by value (yrs gives integers back as `Int` or `Float`
/// depending on how yjs wrote them) and object keys in any order (yrs maps are hash maps).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_eq(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, xv)| y.get(k).is_some_and(|yv| json_eq(xv, yv)))
        }
        _ => a == b,
    }
}

fn clocks(sv: &StateVector) -> Clocks {
    sv.iter()
        .map(|(client, &clock)| (client.get(), clock))
        .collect()
}

/// `{"<client id>": clock}` as the vectors write state vectors.
fn clocks_from_json(v: &Value) -> Result<Clocks, String> {
    v.as_object()
        .ok_or("stateVector must be an object")?
        .iter()
        .map(|(client, clock)| {
            let client = client
                .parse()
                .map_err(|_| format!("bad client id {client:?}"))?;
            let clock = clock
                .as_u64()
                .and_then(|c| u32::try_from(c).ok())
                .ok_or_else(|| format!("bad clock {clock}"))?;
            Ok((client, clock))
        })
        .collect()
}
