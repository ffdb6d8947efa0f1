//! Inputs the `yjs_*` fuzz targets (`fuzz/`, `docs/fuzzing.md`) found, minimized.
//!
//! None is a panic: each is an update yjs never writes, on which the functions gave yjs
//! 13.6's own bytes (checked with `tests/js/node_modules/yjs`) and those bytes describe a
//! different update, or one that nothing can read. Each test asks for the update to be
//! refused (`UpdateError::Unsupported` or `IntegerOutOfRange`) or handled faithfully.

// For `LEADING_SKIP` the fuzz target found `01 01 f0c300 00 0a 7e 00 063a16` (an overlong
// client var-int, a skip of 126, and trailing bytes).

use teleportal_core::yjs;

/// One client (0) in two runs, each a GC of length 2 from clock 0: `[2 runs, (1 struct,
/// client 0, clock 0, GC len 2), (the same again), empty delete set]`.
///
/// The conversion writes the second run's struct in the first run, right after its GC, so it
/// moves from clock 0 to clock 2: state vector `[1, 0, 2]` in V1, `[1, 0, 4]` in V2 (yjs's
/// `convertUpdateFormatV1ToV2` writes the same V2 bytes).
const CLIENT_IN_TWO_RUNS: &[u8] = &[2, 1, 0, 0, 0, 2, 1, 0, 0, 0, 2, 0];

/// The same kind of update as the fuzzer found it: empty runs and a client (0) in several runs.
const CLIENT_IN_TWO_RUNS_FOUND: &[u8] = &[
    0x07, 0x00, 0x00, 0x02, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
    0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00,
];

/// Clients in ascending order: client 1 then client 2, a GC of length 1 at clock 0 each.
///
/// yjs's merge assumes an update lists clients in descending order: once it has written
/// client 1's struct it skips every later struct of a client ≥ 1 that ends before it ends,
/// so client 2's struct is dropped. `Y.mergeUpdates([x, x])` gives `01 01 01 00 00 01 00`
/// (state vector `[1, 1, 1]`: client 1 only), and so do our merge and our compaction of `x`
/// alone, though a `Y.Doc` that applies `x` has state vector `[2, 2, 1, 1, 1]`. A server that stores the compaction loses what its clients have.
const ASCENDING_CLIENTS: &[u8] = &[2, 1, 1, 0, 0, 1, 1, 2, 0, 0, 1, 0];

fn assert_conversion_keeps_clocks(v1: &[u8]) {
    let Ok(v2) = yjs::convert_update_v1_to_v2(v1) else {
        return; // refused: fine
    };
    assert_eq!(
        yjs::encode_state_vector_from_update_v2(&v2),
        yjs::encode_state_vector_from_update_v1(v1),
        "state vector across V1/V2"
    );
    assert_eq!(
        yjs::parse_update_meta_v2(&v2),
        yjs::parse_update_meta_v1(v1),
        "metadata across V1/V2"
    );
}

#[test]
fn converting_a_client_in_two_runs_keeps_its_clocks_or_is_refused() {
    assert_conversion_keeps_clocks(CLIENT_IN_TWO_RUNS);
}

#[test]
fn converting_the_found_update_keeps_its_clocks_or_is_refused() {
    assert_conversion_keeps_clocks(CLIENT_IN_TWO_RUNS_FOUND);
}

#[test]
fn compacting_ascending_clients_keeps_them_or_is_refused() {
    let Ok(sv) = yjs::encode_state_vector_from_update_v1(ASCENDING_CLIENTS) else {
        // Refused: then every function refuses it.
        assert!(yjs::compact_updates_v1(&[ASCENDING_CLIENTS]).is_err());
        assert!(yjs::merge_updates_v1(&[ASCENDING_CLIENTS, ASCENDING_CLIENTS]).is_err());
        assert!(yjs::convert_update_v1_to_v2(ASCENDING_CLIENTS).is_err());
        return;
    };
    assert_eq!(sv, [2, 1, 1, 2, 1]);
    if let Ok(compacted) = yjs::compact_updates_v1(&[ASCENDING_CLIENTS]) {
        assert_eq!(
            yjs::encode_state_vector_from_update_v1(&compacted).unwrap(),
            sv,
            "compacting dropped a client"
        );
    }
    if let Ok(merged) = yjs::merge_updates_v1(&[ASCENDING_CLIENTS, ASCENDING_CLIENTS]) {
        assert_eq!(
            yjs::encode_state_vector_from_update_v1(&merged).unwrap(),
            sv,
            "merging dropped a client"
        );
    }
}

/// One struct, a skip of length 2 at client 1, clock 0: `[1 run, 1 struct, client 1, clock 0,
/// skip (10) of length 2, empty delete set]`.
///
/// A skip is a gap: the update holds nothing of client 1. But yjs's
/// `encodeStateVectorFromUpdate` takes the first struct's end before it looks at whether it
/// is a skip, so the state vector says `{1: 2}` (yjs gives `01 01 02` too), while a `Y.Doc`
/// that applies it, and our compaction of it, say `{}`. A server that answers sync step 1
/// with that state vector tells its clients it has client 1's clocks 0 and 1, and a client
/// that has them will not send them.
const LEADING_SKIP: &[u8] = &[1, 1, 1, 0, 10, 2, 0];

#[test]
fn a_leading_skip_is_not_in_the_state_vector_or_is_refused() {
    if let Ok(sv) = yjs::encode_state_vector_from_update_v1(LEADING_SKIP) {
        assert_eq!(sv, [0], "state vector of an update that holds nothing");
    }
    let v2 = yjs::convert_update_v1_to_v2(LEADING_SKIP);
    if let Ok(sv) = v2.and_then(|v2| yjs::encode_state_vector_from_update_v2(&v2)) {
        assert_eq!(sv, [0], "state vector of the V2 form");
    }
    if let Ok(compacted) = yjs::compact_updates_v1(&[LEADING_SKIP]) {
        assert_eq!(
            yjs::encode_state_vector_from_update_v1(&compacted).unwrap(),
            [0]
        );
    }
}

/// No structs; a delete set with client 7's ranges `(clock 0, len 2)` and `(clock 1, len 2^53 −
/// 1)`. Each range reads, but a merge joins them into `(0, 2^53)`, a length no reader accepts
/// (`IntegerOutOfRange`, in yjs too): the merge (yjs gives the same bytes) and the
/// compaction are updates that nothing can read, and a store that keeps one can read none of
/// what it merges later.
const DELETE_SET_PAST_2_53: &[u8] = &[
    0, 1, 7, 2, 0, 2, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f,
];

/// What the fuzz target found: the same with a second, empty client in the delete set.
const DELETE_SET_PAST_2_53_FOUND: &[u8] = &[
    0x00, 0x02, 0x07, 0x02, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x02, 0x00,
    0x00,
];

fn assert_readable_v1(update: &[u8], what: &str) {
    yjs::encode_state_vector_from_update_v1(update)
        .unwrap_or_else(|e| panic!("{what} does not read: {e}"));
    yjs::merge_updates_v1(&[update, update])
        .unwrap_or_else(|e| panic!("{what} does not merge: {e}"));
}

#[test]
fn merging_a_delete_set_past_2_53_gives_a_readable_update_or_is_refused() {
    for input in [DELETE_SET_PAST_2_53, DELETE_SET_PAST_2_53_FOUND] {
        if let Ok(compacted) = yjs::compact_updates_v1(&[input]) {
            assert_readable_v1(&compacted, "the compaction");
        }
        if let Ok(merged) = yjs::merge_updates_v1(&[input, input]) {
            assert_readable_v1(&merged, "the merge");
        }
    }
}

#[test]
fn merging_v2_delete_sets_past_2_53_gives_a_readable_update_or_is_refused() {
    // The two ranges in two updates (V2 cannot write overlapping ranges in one).
    let a = yjs::convert_update_v1_to_v2(&[0, 1, 7, 1, 0, 2]).unwrap();
    let b = yjs::convert_update_v1_to_v2(&[
        0, 1, 7, 1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f,
    ]);
    let Ok(b) = b else {
        return; // a range ending past 2^53 − 1 refused: fine
    };
    let merges = [
        yjs::merge_updates_v2(&[&a, &b]),
        yjs::compact_updates_v2(&[&a, &b]),
    ];
    for merged in merges.into_iter().flatten() {
        yjs::encode_state_vector_from_update_v2(&merged).expect("the merge reads");
        yjs::merge_updates_v2(&[&merged, &merged]).expect("the merge merges");
        // V2 writes a length less one, so `2^53` fits; its V1 form does not read.
        if let Ok(v1) = yjs::convert_update_v2_to_v1(&merged) {
            assert_readable_v1(&v1, "the V1 form of the merge");
        }
    }
}

/// A V2 update with no structs whose delete set lists client 1 twice, each time with the
/// range `(clock 0, len 1)`. V2 starts each client's clocks afresh, so both lists read, and
/// the state vector, metadata, merge and conversion to V1 accept the update; but
/// `diff_update_v2` against its own state vector refuses it ("a delete set whose ranges are
/// not in order": the two lists become one, and V2 cannot write a range that starts before
/// the last one ended; yjs writes `-1` there, `7f`, a range that is not the update's).
const V2_DELETE_SET_CLIENT_TWICE: &[u8] = &[
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x01, 0x01, 0x00,
    0x00, 0x01, 0x01, 0x00, 0x00,
];

#[test]
fn a_v2_update_that_reads_diffs_against_its_own_state_vector() {
    let Ok(sv) = yjs::encode_state_vector_from_update_v2(V2_DELETE_SET_CLIENT_TWICE) else {
        return; // refused by every reader: fine
    };
    yjs::diff_update_v2(V2_DELETE_SET_CLIENT_TWICE, &sv).expect("diff against its own sv");
    if let Ok(v1) = yjs::convert_update_v2_to_v1(V2_DELETE_SET_CLIENT_TWICE) {
        yjs::convert_update_v1_to_v2(&v1).expect("its V1 form converts back");
    }
}

/// One item of deleted content (length 1) at client 1, clock 0, whose origin is client 2,
/// clock 2^52. V1 reads it; its V2 form (yjs writes the same bytes) stores the origin clock
/// as a difference doubled, `2^53`, which no V2 reader accepts: the conversion gives an
/// update nothing can read. Any clock from 2^52 on does this (a difference of −2^52 too).
const ORIGIN_CLOCK_2_52: &[u8] = &[
    1, 1, 1, 0, 0x81, 2, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x08, 1, 0,
];

/// What the fuzz target found: an item whose parent id has clock 5,910,987,085,586,924
/// (0x15_0002_ed82_21ec, past 2^52), and trailing bytes.
const PARENT_CLOCK_FOUND: &[u8] = &[
    0x01, 0x01, 0xec, 0x07, 0xc3, 0x01, 0x01, 0x07, 0x01, 0xec, 0xc3, 0x88, 0xec, 0xae, 0x80, 0xc0,
    0x0a, 0x5b, 0x00, 0x07, 0x02, 0x02, 0x62, 0xae, 0x80, 0xc0, 0x0a, 0x5b, 0x00,
];

#[test]
fn a_clock_past_2_52_converts_to_a_readable_v2_update_or_is_refused() {
    for input in [ORIGIN_CLOCK_2_52, PARENT_CLOCK_FOUND] {
        let Ok(v2) = yjs::convert_update_v1_to_v2(input) else {
            continue; // refused: fine
        };
        assert_eq!(
            yjs::encode_state_vector_from_update_v2(&v2),
            yjs::encode_state_vector_from_update_v1(input),
            "state vector of the V2 form"
        );
        yjs::convert_update_v2_to_v1(&v2).expect("the V2 form converts back");
    }
}

/// A V2 update with no structs whose delete set gives client 7 the ranges `(2^53 − 2, 1)` and,
/// 5 clocks after its end, `(2^53 + 4, 1)`: V2 writes each clock as a difference from the
/// last range's end, and the reader adds them up without a bound. The V1 form (yjs writes
/// it too) holds the clock `2^53 + 4`, which no V1 reader accepts ("delete set clock").
const V2_DELETE_SET_CLOCK_PAST_2_53: &[u8] = &[
    0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 7, 2, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f, 0,
    5, 0,
];

#[test]
fn a_v2_delete_set_past_2_53_converts_to_a_readable_v1_update_or_is_refused() {
    if let Ok(v1) = yjs::convert_update_v2_to_v1(V2_DELETE_SET_CLOCK_PAST_2_53) {
        assert_readable_v1(&v1, "the V1 form");
    }
}
