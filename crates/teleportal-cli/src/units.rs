//! Values a person types: durations (`30s`, `5m`, `1h 30m`), byte sizes (`16MiB`, `512k`) and
//! `off` for a limit or a timer that should not be there.

use std::time::Duration;

/// A duration as [`humantime`] reads it (`250ms`, `30s`, `5m`, `2h`, `1day`).
pub(crate) fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("{e}; write a number with a unit, e.g. 30s, 5m or 1h"))
}

/// A setting that `off` turns off. (A plain `Option` field would make clap read the flag
/// itself as optional.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OrOff<T>(pub(crate) Option<T>);

/// A duration, or `off`.
pub(crate) fn optional_duration(text: &str) -> Result<OrOff<Duration>, String> {
    if is_off(text) {
        Ok(OrOff(None))
    } else {
        duration(text).map(|d| OrOff(Some(d)))
    }
}

/// A byte count: a number with an optional unit, binary (`KiB`, `MiB`, `GiB`, or `k`, `m`,
/// `g`, which mean the same here) or `B`.
pub(crate) fn bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size; write e.g. 16MiB, 512KiB or 1048576"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        other => return Err(format!("unknown size unit {other:?}; use KiB, MiB or GiB")),
    };
    number
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// A byte count, or `off`.
pub(crate) fn optional_bytes(text: &str) -> Result<OrOff<u64>, String> {
    if is_off(text) {
        Ok(OrOff(None))
    } else {
        bytes(text).map(|n| OrOff(Some(n)))
    }
}

/// A byte count that fits in memory on this machine.
pub(crate) fn memory_bytes(text: &str) -> Result<usize, String> {
    let n = bytes(text)?;
    usize::try_from(n).map_err(|_| format!("{text:?} is too large for this machine"))
}

fn is_off(text: &str) -> bool {
    matches!(
        text.trim().to_ascii_lowercase().as_str(),
        "off" | "none" | "no"
    )
}

/// A byte count the way `--help` and the logs show it.
pub(crate) fn show_bytes(n: u64) -> String {
    const UNITS: [(u32, &str); 3] = [(30, "GiB"), (20, "MiB"), (10, "KiB")];
    for (shift, unit) in UNITS {
        if n >= 1 << shift && n.is_multiple_of(1 << shift) {
            return format!("{}{unit}", n >> shift);
        }
    }
    format!("{n}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_with_binary_units() {
        assert_eq!(bytes("16MiB"), Ok(16 << 20));
        assert_eq!(bytes("512k"), Ok(512 << 10));
        assert_eq!(bytes("2 GiB"), Ok(2 << 30));
        assert_eq!(bytes("1048576"), Ok(1 << 20));
        assert_eq!(optional_bytes("off"), Ok(OrOff(None)));
        assert!(bytes("12 parsecs").is_err());
        assert!(bytes("MiB").is_err());
        assert!(bytes("99999999999999999999GiB").is_err());
        assert!(
            bytes("17179869184GiB").is_err(),
            "overflow is an error, not a wrap"
        );
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(optional_duration("off"), Ok(OrOff(None)));
        let error = duration("30").unwrap_err();
        assert!(error.contains("e.g. 30s"), "{error}");
    }

    #[test]
    fn sizes_show_in_the_largest_exact_unit() {
        assert_eq!(show_bytes(16 << 20), "16MiB");
        assert_eq!(show_bytes(1536), "1536B");
        assert_eq!(show_bytes(3 << 10), "3KiB");
    }
}
