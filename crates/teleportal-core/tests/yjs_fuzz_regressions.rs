//! Inputs the `yjs_*` fuzz targets (`fuzz/`, `docs/fuzzing.md`) found, minimized.
//!
//! Neither is a panic: both are updates laid out as yjs never writes one, on which the
//! functions give yjs 13.6's own bytes (checked with `tests/js/node_modules/yjs`) and those
//! bytes describe a different update. The tests ask for the update to be refused
//! (`UpdateError::Unsupported`, "something yjs would fail on or write wrongly") or handled
//! faithfully; until one of the two, they fail.

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
