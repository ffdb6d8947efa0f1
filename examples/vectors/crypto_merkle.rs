//! Crypto and Merkle vectors.

use bytes::Bytes;
use serde_json::Value;
use teleportal_core::ContentEnvelope;
use teleportal_core::crypto::{
    self, FileChunkCipher, PASSWORD_ITERATIONS, PASSWORD_SALT_PREFIX, SIMPLE_ENCRYPTION_ITERATIONS,
    SIMPLE_ENCRYPTION_SALT,
};
use teleportal_core::lib0::Reader;
use teleportal_core::merkle::{self, Hash, MerkleTree, Sha256Hasher, verify_proof};
use teleportal_core::sidecar::SidecarPlaintext;

use crate::harness::{Outcome, Vector, json_bytes, same, same_hex};

/// The fixed document key of the vectors (§20).
const VECTOR_KEY: [u8; 32] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
    26, 27, 28, 29, 30, 31,
];

/// Yjs content ref of a `ContentString`.
const CONTENT_STRING: u8 = 4;

fn array<const N: usize>(what: &str, bytes: &[u8]) -> Result<[u8; N], String> {
    bytes
        .try_into()
        .map_err(|_| format!("{what} must be {N} bytes, got {}", bytes.len()))
}

fn field_bytes(v: &Vector, key: &str) -> Result<Bytes, String> {
    json_bytes(v.field(key)?)
}

fn field_key(v: &Vector, key: &str) -> Result<[u8; 32], String> {
    array(key, &field_bytes(v, key)?)
}

fn field_str<'a>(v: &'a Vector, key: &str) -> Result<&'a str, String> {
    v.field(key)?
        .as_str()
        .ok_or_else(|| format!("fields.{key} must be a string"))
}

fn field_u64(v: &Vector, key: &str) -> Result<u64, String> {
    v.field(key)?
        .as_u64()
        .ok_or_else(|| format!("fields.{key} must be an unsigned integer"))
}

fn expected_str<'a>(v: &'a Vector, key: &str) -> Result<&'a str, String> {
    v.expected(key)?
        .as_str()
        .ok_or_else(|| format!("expected.{key} must be a string"))
}

fn json_hashes(value: &Value) -> Result<Vec<Hash>, String> {
    value
        .as_array()
        .ok_or("expected an array of hashes")?
        .iter()
        .map(|h| array("hash", &json_bytes(h)?))
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every "crypto" vector: compute the output from the inputs and compare with `hex`; where the
/// output is ciphertext, decrypt it back too.
pub fn check_crypto(v: &Vector) -> Outcome {
    let has = |k: &str| v.fields.get(k).is_some();
    if has("update") {
        check_content_encrypted_update(v)
    } else if has("masterSecret") {
        check_key_wrap(v)
    } else if has("passphrase") {
        let document = field_str(v, "documentName")?;
        same(
            "salt",
            &field_str(v, "salt")?.to_owned(),
            &format!("{PASSWORD_SALT_PREFIX}{document}"),
        )?;
        same(
            "iterations",
            &field_u64(v, "iterations")?,
            &u64::from(PASSWORD_ITERATIONS),
        )?;
        same_hex(
            "password key",
            &crypto::password_key(field_str(v, "passphrase")?, document),
            &v.hex,
        )
    } else if has("documentName") {
        same("salt", &field_str(v, "salt")?, &SIMPLE_ENCRYPTION_SALT)?;
        same(
            "iterations",
            &field_u64(v, "iterations")?,
            &u64::from(SIMPLE_ENCRYPTION_ITERATIONS),
        )?;
        let key = crypto::simple_encryption_key(field_str(v, "documentName")?);
        same_hex("simple encryption key", &key, &v.hex)
    } else if has("name") {
        let token = crypto::metadata_token(&field_key(v, "key")?, field_str(v, "name")?);
        same("token", &token.as_str(), &v.hex.as_str())?;
        same(
            "expected.token",
            &token.as_str(),
            &expected_str(v, "token")?,
        )
    } else if has("iv") && has("plaintext") {
        let key = field_key(v, "key")?;
        let iv = array("iv", &field_bytes(v, "iv")?)?;
        let plaintext = field_bytes(v, "plaintext")?;
        let blob =
            crypto::encrypt_blob_with_iv(&key, &iv, &plaintext).map_err(|e| e.to_string())?;
        same_hex("blob", &blob, &v.hex)?;
        let back = crypto::decrypt_blob(&key, &v.bytes()?).map_err(|e| e.to_string())?;
        same("decrypted", &back.as_slice(), &&plaintext[..])
    } else if has("plaintext") {
        let key = field_key(v, "key")?;
        let plaintext = field_bytes(v, "plaintext")?;
        let cipher = FileChunkCipher::new(&key);
        let chunk = cipher.encrypt(&plaintext).map_err(|e| e.to_string())?;
        same_hex("deterministic chunk", &chunk, &v.hex)?;
        let back = cipher.decrypt(&v.bytes()?).map_err(|e| e.to_string())?;
        same("decrypted", &back.as_slice(), &&plaintext[..])
    } else {
        Err("crypto vector of an unrecognised shape".into())
    }
}

fn check_key_wrap(v: &Vector) -> Outcome {
    let master = field_bytes(v, "masterSecret")?;
    let user = field_str(v, "userId")?;
    let document_key = field_key(v, "documentKey")?;
    let wrapping_key = crypto::key_wrapping_key(&master, user);
    same(
        "wrapping key JWK k",
        &crypto::to_jwk_k(&wrapping_key).as_str(),
        &expected_str(v, "wrappingKeyJwkK")?,
    )?;
    same_hex(
        "wrapped key",
        &crypto::wrap_document_key(&master, user, &document_key),
        &v.hex,
    )?;
    let unwrapped =
        crypto::unwrap_document_key(&master, user, &v.bytes()?).map_err(|e| e.to_string())?;
    same("unwrapped key", &unwrapped, &document_key)
}

/// `crypto_content_encrypted_update_text` is `encryptToContentPayload(key, update)`: producing
/// it needs the §5.2 rewriting of a Yjs update (tokens, placeholders), which this crate does not
/// do. So it is checked from the other side.
///
/// Checked: `hex` decodes as a content envelope with no compaction, whose structure update is
/// `expected.structureUpdate` and which holds exactly one sidecar; the sidecar's IV is
/// `fields.iv`; it decrypts under `fields.key` to `expected.sidecarPlaintext`; re-encrypting
/// that plaintext with the same IV gives the same sidecar bytes, and re-encoding the envelope
/// gives `hex`. The plaintext decodes as a §5.3 sidecar whose dictionary tokens are each
/// `metadata_token(key, original name)`, whose names are the root types of `expected.content`,
/// and whose ContentString entries hold `expected.content`'s text. Each token appears in the
/// structure update while the names and the text do not (they do appear in `fields.update`).
///
/// Not checked: that the structure update is the right Yjs rewriting of `fields.update` (CRDT
/// metadata kept, same-length placeholders, tokens in the right places), nor that applying
/// structure and sidecar together gives the original document.
fn check_content_encrypted_update(v: &Vector) -> Outcome {
    let key = field_key(v, "key")?;
    let iv = array::<12>("iv", &field_bytes(v, "iv")?)?;
    let update = field_bytes(v, "update")?;
    let envelope = ContentEnvelope::decode(v.bytes()?).map_err(|e| format!("envelope: {e}"))?;
    same("compaction", &envelope.compaction, &None)?;
    same_hex(
        "structure update",
        &envelope.structure_update,
        &hex::encode(json_bytes(v.expected("structureUpdate")?)?),
    )?;
    let [sidecar] = envelope.sidecars.as_slice() else {
        return Err(format!(
            "expected one sidecar, got {}",
            envelope.sidecars.len()
        ));
    };
    same("sidecar IV", &crypto::blob_iv(sidecar), &Some(iv))?;
    let plaintext = crypto::decrypt_blob(&key, sidecar).map_err(|e| format!("sidecar: {e}"))?;
    let expected_plaintext = json_bytes(v.expected("sidecarPlaintext")?)?;
    same_hex(
        "sidecar plaintext",
        &plaintext,
        &hex::encode(&expected_plaintext),
    )?;
    let again = crypto::encrypt_blob_with_iv(&key, &iv, &plaintext).map_err(|e| e.to_string())?;
    same("re-encrypted sidecar", &again.as_slice(), &&sidecar[..])?;
    same_hex("re-encoded envelope", &envelope.to_bytes(), &v.hex)?;

    let decoded = SidecarPlaintext::decode(Bytes::from(plaintext))
        .map_err(|e| format!("sidecar plaintext: {e}"))?;
    let content = v
        .expected("content")?
        .as_object()
        .ok_or("expected.content must be an object")?;
    let mut names: Vec<&str> = decoded.dictionary.iter().map(|(_, n)| n.as_str()).collect();
    let mut roots: Vec<&str> = content.keys().map(String::as_str).collect();
    names.sort_unstable();
    roots.sort_unstable();
    same("dictionary names", &names, &roots)?;
    for (token, name) in &decoded.dictionary {
        same(
            "dictionary token",
            &token.as_str(),
            &crypto::metadata_token(&key, name).as_str(),
        )?;
        if !contains(&envelope.structure_update, token.as_bytes()) {
            return Err(format!(
                "token {token} of {name:?} missing from the structure update"
            ));
        }
        if contains(&envelope.structure_update, name.as_bytes()) {
            return Err(format!("name {name:?} left in the structure update"));
        }
        if !contains(&update, name.as_bytes()) {
            return Err(format!("name {name:?} not in the original update"));
        }
    }
    let mut text = String::new();
    for entry in decoded
        .entries
        .iter()
        .filter(|e| e.content_ref == CONTENT_STRING)
    {
        let mut r = Reader::new(entry.data.clone());
        text.push_str(
            &r.read_var_string("sidecar string")
                .map_err(|e| e.to_string())?,
        );
    }
    let expected_text: String = content.values().filter_map(Value::as_str).collect();
    same("sidecar text", &text, &expected_text)?;
    if !text.is_empty() && contains(&envelope.structure_update, text.as_bytes()) {
        return Err("content text left in the structure update".into());
    }
    if !contains(&update, text.as_bytes()) {
        return Err("content text not in the original update".into());
    }
    Ok(())
}

/// The file bytes of a merkle vector: `fields.data`, or the pattern byte i = i mod 251.
fn merkle_data(v: &Vector, size: u64) -> Result<Vec<u8>, String> {
    if let Some(data) = v.fields.get("data") {
        return Ok(json_bytes(data)?.to_vec());
    }
    match field_str(v, "dataPattern")? {
        "byte i = i mod 251" => {
            let len = usize::try_from(size).map_err(|e| e.to_string())?;
            Ok((0..len)
                .map(|i| u8::try_from(i % 251).unwrap_or(0))
                .collect())
        }
        other => Err(format!("unknown data pattern {other:?}")),
    }
}

/// Every "merkle" vector: chunk the data (encrypting each chunk deterministically for
/// encrypted files), build the tree, and compare root (`hex`), file id, chunk count, leaf
/// hashes, proofs and, where given, on-wire chunks and the serialized tree. Every proof must
/// also pass `verify_proof`, and the serialized tree must decode back to the same tree.
pub fn check_merkle(v: &Vector) -> Outcome {
    let size = field_u64(v, "size")?;
    let wire_chunk = usize::try_from(field_u64(v, "chunkSize")?).map_err(|e| e.to_string())?;
    let encrypted = v
        .field("encrypted")?
        .as_bool()
        .ok_or("encrypted must be a bool")?;
    let data = merkle_data(v, size)?;
    same("data length", &(data.len() as u64), &size)?;
    let plain_chunk = merkle::plaintext_chunk_size(wire_chunk, encrypted)
        .ok_or("no plaintext fits the chunk size")?;

    let chunks: Vec<Vec<u8>> = if encrypted {
        // Encrypted vectors use the fixed vector key (given again in fields.key).
        let key = match v.fields.get("key") {
            Some(k) => array("key", &json_bytes(k)?)?,
            None => VECTOR_KEY,
        };
        let cipher = FileChunkCipher::new(&key);
        merkle::chunks(&data, plain_chunk)
            .map(|c| cipher.encrypt(c).map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?
    } else {
        merkle::chunks(&data, plain_chunk)
            .map(<[u8]>::to_vec)
            .collect()
    };
    let total = merkle::total_chunks(size, plain_chunk);
    let expected_total = v
        .expected("totalChunks")?
        .as_u64()
        .ok_or("totalChunks must be a number")?;
    same("totalChunks", &total, &expected_total)?;
    same("chunk count", &(chunks.len() as u64), &total)?;
    if let Some(c) = chunks.iter().find(|c| c.len() > wire_chunk) {
        return Err(format!(
            "on-wire chunk of {} bytes exceeds {wire_chunk}",
            c.len()
        ));
    }
    if let Ok(expected) = v.expected("chunks") {
        let expected = expected
            .as_array()
            .ok_or("chunks must be an array")?
            .iter()
            .map(|c| json_bytes(c).map(|b| b.to_vec()))
            .collect::<Result<Vec<_>, _>>()?;
        same("chunks", &chunks, &expected)?;
    }

    let tree = MerkleTree::from_chunks(&Sha256Hasher, &chunks).ok_or("no tree")?;
    same_hex("root", &tree.root(), &v.hex)?;
    same(
        "fileId",
        &tree.file_id().as_str(),
        &expected_str(v, "fileId")?,
    )?;
    same(
        "parsed fileId",
        &merkle::parse_file_id(&tree.file_id()),
        &Some(tree.root()),
    )?;
    let leaves: Vec<Hash> = tree.leaf_hashes().copied().collect();
    same(
        "leafHashes",
        &leaves,
        &json_hashes(v.expected("leafHashes")?)?,
    )?;

    let proofs = v
        .expected("proofs")?
        .as_array()
        .ok_or("proofs must be an array")?;
    same("proof count", &proofs.len(), &chunks.len())?;
    for ((i, chunk), expected) in (0u32..).zip(&chunks).zip(proofs) {
        let expected = json_hashes(expected)?;
        let proof = tree
            .proof(i)
            .ok_or_else(|| format!("no proof for chunk {i}"))?;
        same(&format!("proof {i}"), &proof, &expected)?;
        if !verify_proof(
            &Sha256Hasher,
            chunk,
            &expected,
            &tree.root(),
            i.into(),
            total,
        ) {
            return Err(format!("proof {i} does not verify"));
        }
    }

    if let Ok(serialized) = v.expected("serializedTree") {
        let serialized = json_bytes(serialized)?;
        same_hex(
            "serializedTree",
            &tree.to_bytes(),
            &hex::encode(&serialized),
        )?;
        let back = MerkleTree::decode(serialized).map_err(|e| e.to_string())?;
        same("decoded tree", &back, &tree)?;
    }
    Ok(())
}

/// "storage" vectors of serialized Merkle trees: build from `fields.chunks`, serialize and
/// compare with `hex`, root and node count; decode `hex` back to the same tree.
pub fn check_serialized_tree(v: &Vector) -> Outcome {
    let chunks = v
        .field("chunks")?
        .as_array()
        .ok_or("chunks must be an array")?
        .iter()
        .map(json_bytes)
        .collect::<Result<Vec<_>, _>>()?;
    let tree = MerkleTree::from_chunks(&Sha256Hasher, &chunks).ok_or("no tree")?;
    same(
        "leafCount",
        &u64::from(tree.leaf_count()),
        &field_u64(v, "leafCount")?,
    )?;
    same_hex("serialized tree", &tree.to_bytes(), &v.hex)?;
    same_hex(
        "root",
        &tree.root(),
        &hex::encode(json_bytes(v.expected("root")?)?),
    )?;
    let node_count = v
        .expected("nodeCount")?
        .as_u64()
        .ok_or("nodeCount must be a number")?;
    same("nodeCount", &(tree.nodes().len() as u64), &node_count)?;
    let back = MerkleTree::decode(v.bytes()?).map_err(|e| e.to_string())?;
    same("decoded tree", &back, &tree)?;
    if !back.verify_hashes(&Sha256Hasher) {
        return Err("decoded tree's hashes are inconsistent".into());
    }
    Ok(())
}
