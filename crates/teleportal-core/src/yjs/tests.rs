//! Unit tests on hand-built updates and the recorded history; `tests/yjs_oracle.rs` checks
//! every function against yjs itself.

use super::*;
use proptest::prelude::*;

/// The recorded editing session of `fixtures/yjs-history-1k.bin`: 1,000 V1 updates.
fn history() -> Vec<Vec<u8>> {
    let bytes: &[u8] = include_bytes!("../../fixtures/yjs-history-1k.bin");
    let mut updates = Vec::new();
    let mut rest = bytes;
    while rest.len() >= 4 {
        let len = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
        updates.push(rest[4..4 + len].to_vec());
        rest = &rest[4 + len..];
    }
    updates
}

fn refs(updates: &[Vec<u8>]) -> Vec<&[u8]> {
    updates.iter().map(Vec::as_slice).collect()
}

#[test]
fn the_history_merges_converts_and_diffs_consistently() {
    let updates = history();
    let merged = merge_updates_v1(&refs(&updates)).unwrap();
    let sv = encode_state_vector_from_update_v1(&merged).unwrap();
    // The fixture's own record of the final state vector.
    assert_eq!(
        hex::encode(&sv),
        "08f007ba02ef07d402ee078002ed07c702ec079a02eb07b502ea078502e907b602"
    );
    let v2 = convert_update_v1_to_v2(&merged).unwrap();
    assert_eq!(convert_update_v2_to_v1(&v2).unwrap(), merged);
    assert_eq!(encode_state_vector_from_update_v2(&v2).unwrap(), sv);
    // Merging the V2 forms gives the V2 form of the merge.
    let v2s: Vec<Vec<u8>> = updates
        .iter()
        .map(|u| convert_update_v1_to_v2(u).unwrap())
        .collect();
    assert_eq!(merge_updates_v2(&refs(&v2s)).unwrap(), v2);
    // Against its own state vector nothing is left but the deletions.
    let nothing = diff_update_v1(&merged, &sv).unwrap();
    assert!(parse_update_meta_v1(&nothing).unwrap().from.is_empty());
    // Against the empty state vector, everything.
    assert_eq!(diff_update_v1(&merged, &[0]).unwrap(), merged);
}

#[test]
fn compaction_keeps_the_state_and_shrinks_the_update() {
    let updates = history();
    let merged = merge_updates_v1(&refs(&updates)).unwrap();
    let compacted = compact_updates_v1(&refs(&updates)).unwrap();
    assert!(
        compacted.len() < merged.len(),
        "{} !< {}",
        compacted.len(),
        merged.len()
    );
    assert_eq!(
        encode_state_vector_from_update_v1(&compacted).unwrap(),
        encode_state_vector_from_update_v1(&merged).unwrap()
    );
    // Compacting again changes nothing, and merging what was compacted is the same update.
    assert_eq!(compact_updates_v1(&[&compacted]).unwrap(), compacted);
    let v2 = compact_updates_v2(&[&convert_update_v1_to_v2(&merged).unwrap()]).unwrap();
    assert_eq!(convert_update_v2_to_v1(&v2).unwrap(), compacted);
}

#[test]
fn a_single_update_merges_to_itself() {
    let updates = history();
    assert_eq!(merge_updates_v1(&[&updates[3]]).unwrap(), updates[3]);
    assert!(
        merge_updates_v1(&[&[1, 2, 3]]).is_err(),
        "even alone it is checked"
    );
}

#[test]
fn empty_updates_are_recognised() {
    assert!(is_empty_update_v1(&[0, 0]).unwrap());
    assert!(is_empty_update_v2(&[0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]).unwrap());
    // yjs, too, cannot read a V2 update whose string column is missing.
    assert!(is_empty_update_v2(&[0; 12]).is_err());
    let updates = history();
    assert!(!is_empty_update_v1(&updates[0]).unwrap());
    // A deletion alone is a write.
    assert!(!is_empty_update_v1(&[0, 1, 5, 1, 0, 1]).unwrap());
}

/// A V1 update with one item in the root map "m" at key "k" holding one `Any` value.
fn map_update(any: &[u8]) -> Vec<u8> {
    let mut u = vec![1, 1, 9, 0, 0x28, 1, 1, b'm', 1, b'k', 1];
    u.extend_from_slice(any);
    u.push(0);
    u
}

#[test]
fn any_values_keep_their_bytes_and_key_order() {
    // {"n": 174, "by": 2, "v": 0.57}: keys not in any sorted order.
    let mut any = vec![
        118,
        3,
        1,
        b'n',
        125,
        0x80 | 46,
        2,
        2,
        b'b',
        b'y',
        125,
        2,
        1,
        b'v',
        123,
    ];
    any.extend_from_slice(&0.57f64.to_be_bytes());
    let u = map_update(&any);
    let other = [1, 1, 3, 0, 0x28, 1, 1, b'm', 1, b'z', 1, 126, 0];
    let merged = merge_updates_v1(&[&u, &other]).unwrap();
    assert!(
        merged.windows(any.len()).any(|w| w == any),
        "the value's bytes are in the merge"
    );
    let v2 = convert_update_v1_to_v2(&merged).unwrap();
    assert!(v2.windows(any.len()).any(|w| w == any));
    assert_eq!(convert_update_v2_to_v1(&v2).unwrap(), merged);
}

#[test]
fn deep_values_are_refused_by_every_function() {
    for depth in [MAX_NESTING + 1, 8_000] {
        let mut any = [117u8, 1].repeat(depth);
        any.push(126);
        let u = map_update(&any);
        let deep = Err(UpdateError::TooDeep { max: MAX_NESTING });
        assert_eq!(merge_updates_v1(&[&u, &[0, 0]]), deep);
        assert_eq!(compact_updates_v1(&[&u]), deep);
        assert_eq!(diff_update_v1(&u, &[0]), deep);
        assert_eq!(encode_state_vector_from_update_v1(&u), deep);
        assert_eq!(convert_update_v1_to_v2(&u), deep);
        assert_eq!(
            parse_update_meta_v1(&u).map(|_| ()),
            deep.map(|_: Vec<u8>| ())
        );
    }
    let mut any = [117u8, 1].repeat(MAX_NESTING);
    any.push(126);
    let u = map_update(&any);
    assert_eq!(merge_updates_v1(&[&u, &[0, 0]]).unwrap(), u);
}

#[test]
fn runs_that_cost_no_bytes_cannot_stand_for_billions_of_structs() {
    // V2: one client with 2^40 structs, every info a GC (a run that never ends) and every
    // length 1 (a run of 2^40 in a few bytes).
    let mut u = vec![0, 0]; // flag, key clock column
    u.extend([1, 0]); // client column: client 0
    u.extend([0, 0]); // left and right clock columns
    u.extend([1, 0]); // info: 0 for ever
    u.extend([1, 0]); // strings: the empty string, no lengths
    u.extend([0, 0]); // parent info, type ref
    let mut len_column = Vec::new();
    cursor::write_var_int(&mut len_column, true, 1);
    cursor::write_var_uint(&mut len_column, (1 << 40) - 2);
    u.push(u8::try_from(len_column.len()).unwrap());
    u.extend(len_column);
    u.push(1); // one client
    cursor::write_var_uint(&mut u, 1 << 40);
    u.push(0); // clock 0
    u.push(0); // no deletions
    let started = std::time::Instant::now();
    assert_eq!(
        encode_state_vector_from_update_v2(&u),
        Err(UpdateError::TooManyStructs)
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn any_bytes_give_a_result_or_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = merge_updates_v1(&[&bytes, &[0, 0]]);
        let _ = merge_updates_v2(&[&bytes, &bytes]);
        let _ = compact_updates_v1(&[&bytes]);
        let _ = compact_updates_v2(&[&bytes]);
        let _ = diff_update_v1(&bytes, &[1, 1, 1]);
        let _ = diff_update_v2(&bytes, &[0]);
        let _ = encode_state_vector_from_update_v1(&bytes);
        let _ = encode_state_vector_from_update_v2(&bytes);
        let _ = convert_update_v1_to_v2(&bytes);
        let _ = convert_update_v2_to_v1(&bytes);
        let _ = parse_update_meta_v1(&bytes);
        let _ = parse_update_meta_v2(&bytes);
    }

    #[test]
    fn damaged_history_updates_give_a_result_or_an_error(
        index in 0usize..1000,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
    ) {
        let updates = history();
        let mut u = updates[index].clone();
        for (at, b) in flips {
            let at = at % u.len();
            u[at] = b;
        }
        let v2 = convert_update_v1_to_v2(&updates[index]).unwrap();
        let mut v2d = v2.clone();
        v2d[index % v2.len()] ^= 0x55;
        let _ = merge_updates_v1(&[&u, &updates[0]]);
        let _ = compact_updates_v1(&[&u, &updates[1]]);
        let _ = diff_update_v1(&u, &[1, 1, 1]);
        let _ = convert_update_v1_to_v2(&u);
        let _ = merge_updates_v2(&[&v2d, &v2]);
        let _ = convert_update_v2_to_v1(&v2d);
        let _ = compact_updates_v2(&[&v2d]);
    }
}
