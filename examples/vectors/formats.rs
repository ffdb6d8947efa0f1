//! Sidecar plaintexts, milestones, attribution and storage formats.

use bytes::Bytes;
use serde_json::Value;
use teleportal_core::attribution::{
    Attribute, AttributedRange, ClientAttributions, ClientIds, ContentIds, ContentMap, IdMap,
    IdRange, IdSet,
};
use teleportal_core::json::any_from_json;
use teleportal_core::milestone::{
    CreatedBy, CreatorKind, Milestone, MilestoneMeta, MilestoneMetaDoc,
};
use teleportal_core::sidecar::{SidecarEntry, SidecarPlaintext};
use teleportal_core::storage_format::VersionedBytes;
use teleportal_core::{Any, DecodeError};

use crate::harness::{Outcome, Vector, json_bytes, same, same_hex};

/// A sidecar plaintext (spec §5.3): decode to `fields`, re-encode to `hex`.
pub fn check_sidecar(v: &Vector) -> Outcome {
    let decoded =
        SidecarPlaintext::decode(v.bytes()?).map_err(|e| format!("decode failed: {e}"))?;
    let expected = sidecar_from_fields(&v.fields)?;
    same("sidecar", &decoded, &expected)?;
    same_hex("re-encoded", &decoded.to_bytes(), v.reencoded_hex())?;
    if !v.is_decode_only() {
        same_hex("encoded from fields", &expected.to_bytes(), &v.hex)?;
    }
    Ok(())
}

/// A milestone (meta + snapshot) or a meta doc (`fields.milestones`), spec §13.
pub fn check_milestone(v: &Vector) -> Outcome {
    let bytes = v.bytes()?;
    let (decoded, expected) = if let Some(list) = v.fields.get("milestones") {
        let expected = MilestoneMetaDoc {
            milestones: array(list, "milestones")?
                .iter()
                .map(meta_from_fields)
                .collect::<Result<_, _>>()?,
        };
        let decoded = MilestoneMetaDoc::decode(bytes).map_err(|e| format!("decode failed: {e}"))?;
        same("meta doc", &decoded, &expected)?;
        (decoded.to_bytes(), expected.to_bytes())
    } else {
        let expected = Milestone {
            meta: meta_from_fields(&v.fields)?,
            snapshot: json_bytes(v.field("snapshot")?)?,
        };
        let decoded = Milestone::decode(bytes).map_err(|e| format!("decode failed: {e}"))?;
        same("milestone", &decoded, &expected)?;
        (decoded.to_bytes(), expected.to_bytes())
    };
    same_hex("re-encoded", &decoded, v.reencoded_hex())?;
    same_hex("encoded from fields", &expected, v.reencoded_hex())
}

/// ContentIds or ContentMap (spec §14), by `fields.kind`.
pub fn check_attribution(v: &Vector) -> Outcome {
    let bytes = v.bytes()?;
    let (decoded, expected) = match v.field("kind")?.as_str() {
        Some("content-ids") => {
            let expected = ContentIds {
                inserts: id_set_from_fields(v.field("inserts")?)?,
                deletes: id_set_from_fields(v.field("deletes")?)?,
            };
            let decoded = ContentIds::decode(bytes).map_err(|e| format!("decode failed: {e}"))?;
            same("content ids", &decoded, &expected)?;
            (decoded.to_bytes(), expected.to_bytes())
        }
        Some("content-map") => {
            let expected = ContentMap {
                inserts: id_map_from_fields(v.field("inserts")?)?,
                deletes: id_map_from_fields(v.field("deletes")?)?,
            };
            let decoded = ContentMap::decode(bytes).map_err(|e| format!("decode failed: {e}"))?;
            same("content map", &decoded, &expected)?;
            (decoded.to_bytes(), expected.to_bytes())
        }
        other => return Err(format!("unknown attribution kind {other:?}")),
    };
    same_hex("re-encoded", &decoded, v.reencoded_hex())?;
    same_hex("encoded from fields", &expected, v.reencoded_hex())
}

/// `encodeVersionedBytes`: one version byte, then the data.
pub fn check_versioned_bytes(v: &Vector) -> Outcome {
    let version = v
        .field("version")?
        .as_u64()
        .and_then(|n| u8::try_from(n).ok())
        .ok_or("version must be a byte")?;
    let expected = VersionedBytes {
        version,
        data: json_bytes(v.field("data")?)?,
    };
    let decoded = VersionedBytes::decode(v.bytes()?).map_err(|e| format!("decode failed: {e}"))?;
    same("versioned bytes", &decoded, &expected)?;
    same_hex("re-encoded", &decoded.to_bytes(), v.reencoded_hex())?;
    same_hex(
        "encoded from fields",
        &expected.to_bytes(),
        v.reencoded_hex(),
    )
}

/// Runs the decoder a negative vector names: `None` if this module has no such decoder.
pub fn decode_with(decoder: &str, bytes: Bytes) -> Option<Result<(), String>> {
    let err = |e: DecodeError| e.to_string();
    Some(match decoder {
        "sidecar" => SidecarPlaintext::decode(bytes).map(drop).map_err(err),
        "milestone" => Milestone::decode(bytes).map(drop).map_err(err),
        "content-ids" => ContentIds::decode(bytes).map(drop).map_err(err),
        "content-map" => ContentMap::decode(bytes).map(drop).map_err(err),
        _ => return None,
    })
}

fn array<'a>(v: &'a Value, what: &str) -> Result<&'a [Value], String> {
    v.as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| format!("{what} must be an array"))
}

fn get<'a>(v: &'a Value, key: &str) -> Result<&'a Value, String> {
    v.get(key).ok_or_else(|| format!("missing {key}"))
}

fn u64_of(v: &Value, key: &str) -> Result<u64, String> {
    get(v, key)?
        .as_u64()
        .ok_or_else(|| format!("{key} must be an unsigned integer"))
}

fn str_of(v: &Value, key: &str) -> Result<String, String> {
    get(v, key)?
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("{key} must be a string"))
}

fn number_of(v: &Value, key: &str) -> Result<f64, String> {
    match any_from_json(get(v, key)?).map_err(|e| e.to_string())? {
        Any::Number(n) => Ok(n),
        other => Err(format!("{key} must be a number, got {other:?}")),
    }
}

fn sidecar_from_fields(f: &Value) -> Result<SidecarPlaintext, String> {
    let dictionary = array(get(f, "dictionary")?, "dictionary")?
        .iter()
        .map(|pair| match pair.as_array().map(Vec::as_slice) {
            Some([Value::String(token), Value::String(name)]) => Ok((token.clone(), name.clone())),
            _ => Err(format!("dictionary entry {pair} must be [token, name]")),
        })
        .collect::<Result<_, String>>()?;
    let entries = array(get(f, "entries")?, "entries")?
        .iter()
        .map(|e| {
            Ok(SidecarEntry {
                client_id: u64_of(e, "clientId")?,
                clock: u64_of(e, "clock")?,
                content_ref: u8::try_from(u64_of(e, "contentRef")?)
                    .map_err(|_| "contentRef must be a byte")?,
                item_length: u64_of(e, "itemLength")?,
                data: json_bytes(get(e, "data")?)?,
            })
        })
        .collect::<Result<_, String>>()?;
    Ok(SidecarPlaintext {
        dictionary,
        entries,
    })
}

fn meta_from_fields(f: &Value) -> Result<MilestoneMeta, String> {
    let optional_number = |key: &str| f.get(key).map(|_| number_of(f, key)).transpose();
    let optional_string = |key: &str| f.get(key).map(|_| str_of(f, key)).transpose();
    let created_by = get(f, "createdBy")?;
    let kind = match str_of(created_by, "type")?.as_str() {
        "user" => CreatorKind::User,
        "system" => CreatorKind::System,
        other => return Err(format!("unknown createdBy.type {other:?}")),
    };
    Ok(MilestoneMeta {
        document_id: str_of(f, "documentId")?,
        id: str_of(f, "id")?,
        name: str_of(f, "name")?,
        created_at: number_of(f, "createdAt")?,
        deleted_at: optional_number("deletedAt")?,
        deleted_by: optional_string("deletedBy")?,
        lifecycle_state: optional_string("lifecycleState")?,
        retention_policy_id: optional_string("retentionPolicyId")?,
        expires_at: optional_number("expiresAt")?,
        created_by: CreatedBy {
            kind,
            id: str_of(created_by, "id")?,
        },
    })
}

fn ranges_of(c: &Value) -> Result<&[Value], String> {
    array(get(c, "ranges")?, "ranges")
}

fn id_set_from_fields(list: &Value) -> Result<IdSet, String> {
    let clients = array(list, "id set")?
        .iter()
        .map(|c| {
            Ok(ClientIds {
                client: u64_of(c, "client")?,
                ranges: ranges_of(c)?
                    .iter()
                    .map(|r| {
                        Ok(IdRange {
                            clock: u64_of(r, "clock")?,
                            len: u64_of(r, "len")?,
                        })
                    })
                    .collect::<Result<_, String>>()?,
            })
        })
        .collect::<Result<_, String>>()?;
    Ok(IdSet { clients })
}

fn id_map_from_fields(list: &Value) -> Result<IdMap, String> {
    let clients = array(list, "id map")?
        .iter()
        .map(|c| {
            Ok(ClientAttributions {
                client: u64_of(c, "client")?,
                ranges: ranges_of(c)?
                    .iter()
                    .map(|r| {
                        Ok(AttributedRange {
                            clock: u64_of(r, "clock")?,
                            len: u64_of(r, "len")?,
                            attrs: array(get(r, "attrs")?, "attrs")?
                                .iter()
                                .map(|a| {
                                    let value =
                                        any_from_json(get(a, "val")?).map_err(|e| e.to_string())?;
                                    Ok(Attribute::new(str_of(a, "name")?, value))
                                })
                                .collect::<Result<_, String>>()?,
                        })
                    })
                    .collect::<Result<_, String>>()?,
            })
        })
        .collect::<Result<_, String>>()?;
    Ok(IdMap { clients })
}
