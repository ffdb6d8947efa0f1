//! Encryption-at-rest keys from `--encryption-key-file` or `TELEPORTAL_ENCRYPTION_KEYS`:
//! `ID:HEX` entries, the first one current.

use teleportal_storage::encryption::{EncryptionKey, KeyId, StaticKeys};

/// Reads `ID:HEX` entries (64 hex digits, a 256-bit key), one per line or separated by commas;
/// blank lines and lines starting with `#` are skipped. The first key encrypts new records;
/// the others stay to decrypt records written before a rotation.
pub(super) fn parse(text: &str) -> Result<StaticKeys, String> {
    let mut keys = Vec::new();
    for (n, entry) in text
        .lines()
        .flat_map(|line| line.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty() && !e.starts_with('#'))
        .enumerate()
    {
        let (id, hex_key) = entry.split_once(':').ok_or_else(|| {
            format!(
                "key {}: expected ID:HEX (make one with `teleportal keygen`)",
                n + 1
            )
        })?;
        let bytes = hex::decode(hex_key.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| format!("key {:?}: expected 64 hex digits (32 bytes)", id.trim()))?;
        let id = KeyId::new(id.trim()).map_err(|e| format!("key {}: {e}", n + 1))?;
        keys.push(EncryptionKey::new(id, bytes));
    }
    let mut keys = keys.into_iter();
    let current = keys
        .next()
        .ok_or_else(|| "no keys: expected at least one ID:HEX entry".to_owned())?;
    let set = StaticKeys::new(current);
    for key in keys {
        let id = key.id().as_str().to_owned();
        set.insert(key).map_err(|e| format!("key {id:?}: {e}"))?;
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use teleportal_storage::encryption::KeyProvider;

    use super::*;

    #[test]
    fn the_first_key_is_current_and_the_others_still_read() {
        let text = format!(
            "# rotated 2026-12\nk2:{}\n\nk1:{}\n",
            "22".repeat(32),
            "11".repeat(32)
        );
        let keys = parse(&text).unwrap();
        assert_eq!(keys.current_key().unwrap().id().as_str(), "k2");
        assert_eq!(keys.key("k1").unwrap().unwrap().as_bytes(), &[0x11; 32]);
        let inline = parse(&format!("a:{},b:{}", "01".repeat(32), "02".repeat(32))).unwrap();
        assert_eq!(inline.current_key().unwrap().id().as_str(), "a");
    }

    #[test]
    fn bad_entries_say_what_is_wrong() {
        assert!(parse("").unwrap_err().contains("no keys"));
        assert!(parse("k1").unwrap_err().contains("ID:HEX"));
        assert!(parse("k1:abcd").unwrap_err().contains("64 hex digits"));
        let twice = format!("k1:{}\nk1:{}", "11".repeat(32), "12".repeat(32));
        assert!(parse(&twice).is_err(), "one id naming two keys is refused");
    }
}
