//! Property tests over every codec of the crate:
//!
//! 1. arbitrary values of every message and storage type survive `decode(encode(x)) == x`,
//!    and re-encoding a decoded value gives the same bytes;
//! 2. every decoder is total — random bytes and mutated valid encodings give a value or an
//!    error, never a panic — and whatever a decoder accepts re-encodes to a fixpoint;
//! 3. the tokio-util `MessageArrayCodec` reassembles messages from any split of the stream,
//!    rejects oversized frames before their bytes arrive and reserves nothing for them;
//! 4. decoding from [`Bytes`] is zero-copy: payloads point into the input buffer.
//!
//! Values stay inside the documented domains of the encoders: integers up to 2^53 − 1 (the
//! lib0 range; larger values are written but rejected by every lib0 decoder), RPC error
//! payloads that are not `null`/`undefined` (written as "no payload"), `AuthMessage::Other`
//! with a non-zero type (0 is `PermissionDenied`), sidecar entries with data and clocks below
//! 2^52, and attribution clients/ranges in wire order (others are normalised, tested apart).

use std::fmt::Debug;
use std::sync::Arc;

use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use teleportal_core::attribution::{
    Attribute, AttributedRange, ClientAttributions, ClientIds, ContentIds, ContentMap, IdMap,
    IdRange, IdSet,
};
use teleportal_core::lib0::MAX_SAFE_INTEGER;
use teleportal_core::milestone::{
    CreatedBy, CreatorKind, Milestone, MilestoneMeta, MilestoneMetaDoc,
};
use teleportal_core::sidecar::{SidecarEntry, SidecarPlaintext};
use teleportal_core::storage_format::VersionedBytes;
use teleportal_core::y_protocols::{AuthMessage, AwarenessEntry, AwarenessUpdate, SyncMessage};
use teleportal_core::{
    AckMessage, Any, AwarenessMessage, Body, Compaction, ContentEnvelope, DecodeError, DocMessage,
    Frame, Message, PresenceEntry, PresenceMessage, PubSubFrame, RpcKind, RpcMessage, RpcPayload,
    SidecarRange, Update, YMessage, message_array,
};

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

/// Unsigned integers in the lib0 range, biased towards varUint length boundaries.
fn safe_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        0u64..0x80,
        0x80u64..0x4000,
        Just(MAX_SAFE_INTEGER),
        (0u32..53).prop_map(|shift| 1u64 << shift),
        0u64..=MAX_SAFE_INTEGER,
    ]
}

/// Short strings of arbitrary Unicode (empty included).
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "\\PC{0,10}",
        any::<String>().prop_map(|s| s.chars().take(12).collect())
    ]
}

fn bytes_up_to(max: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..=max).prop_map(Bytes::from)
}

/// Every kind of double, including the lib0 tag boundaries, −0, infinities and any NaN.
fn any_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        any::<u64>().prop_map(f64::from_bits),
        any::<i32>().prop_map(f64::from),
        any::<f32>().prop_map(f64::from),
        prop::sample::select(vec![
            0.0,
            -0.0,
            2_147_483_647.0,
            -2_147_483_647.0,
            2_147_483_648.0,
            -2_147_483_648.0,
            9_007_199_254_740_991.0,
            1_700_000_000_000.0,
            0.5,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            f64::MIN_POSITIVE,
            f64::MAX,
        ]),
    ]
}

fn any_leaf() -> impl Strategy<Value = Any> {
    prop_oneof![
        Just(Any::Undefined),
        Just(Any::Null),
        any_f64().prop_map(Any::Number),
        any::<i64>().prop_map(Any::BigInt),
        any::<bool>().prop_map(Any::Bool),
        text().prop_map(Any::String),
        bytes_up_to(16).prop_map(Any::Bytes),
    ]
}

/// Arbitrary lib0 `Any` values, nested a few levels.
fn any_value() -> BoxedStrategy<Any> {
    any_leaf()
        .prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                vec(inner.clone(), 0..6).prop_map(Any::Array),
                vec((text(), inner), 0..6).prop_map(Any::Object),
            ]
        })
        .boxed()
}

fn update() -> impl Strategy<Value = Update> {
    (any::<u8>(), bytes_up_to(48)).prop_map(|(version, data)| Update { version, data })
}

fn doc_message() -> BoxedStrategy<DocMessage> {
    prop_oneof![
        bytes_up_to(32).prop_map(|state_vector| DocMessage::SyncStep1 { state_vector }),
        update().prop_map(DocMessage::SyncStep2),
        update().prop_map(DocMessage::Update),
        Just(DocMessage::SyncDone),
        (any::<bool>(), text()).prop_map(|(allowed, reason)| DocMessage::Auth { allowed, reason }),
    ]
    .boxed()
}

fn awareness_message() -> impl Strategy<Value = AwarenessMessage> {
    prop_oneof![
        bytes_up_to(48).prop_map(AwarenessMessage::Update),
        Just(AwarenessMessage::Request),
    ]
}

fn ack_message() -> impl Strategy<Value = AckMessage> {
    (
        "[0-9a-f]{16}|\\PC{0,4}",
        proptest::option::of(safe_u64()),
        proptest::option::of(text()),
    )
        .prop_map(|(message_id, retry_after, error)| AckMessage {
            message_id,
            retry_after,
            error,
        })
}

fn presence_entry() -> impl Strategy<Value = PresenceEntry> {
    (safe_u64(), text(), text(), vec((text(), any_value()), 0..4)).prop_map(
        |(awareness_id, client_id, user_id, data)| PresenceEntry {
            awareness_id,
            client_id,
            user_id,
            data,
        },
    )
}

fn presence_message() -> impl Strategy<Value = PresenceMessage> {
    prop_oneof![
        safe_u64().prop_map(|awareness_id| PresenceMessage::Announce { awareness_id }),
        presence_entry().prop_map(PresenceMessage::Join),
        presence_entry().prop_map(PresenceMessage::Leave),
        vec(presence_entry(), 0..4).prop_map(PresenceMessage::Heartbeat),
        safe_u64().prop_map(|awareness_id| PresenceMessage::Unannounce { awareness_id }),
    ]
}

fn rpc_kind() -> impl Strategy<Value = RpcKind> {
    prop_oneof![
        Just(RpcKind::Request),
        text().prop_map(|original_request_id| RpcKind::Stream {
            original_request_id
        }),
        text().prop_map(|original_request_id| RpcKind::Response {
            original_request_id
        }),
    ]
}

/// Error payloads exclude `null`/`undefined`: the wire writes them as "no payload" (tested in
/// `rpc_null_and_undefined_error_payloads_read_back_as_none`).
fn rpc_payload() -> impl Strategy<Value = RpcPayload> {
    let payload = proptest::option::of(
        any_value().prop_filter("null/undefined are written as no payload", |p| {
            !matches!(p, Any::Null | Any::Undefined)
        }),
    );
    prop_oneof![
        any_value().prop_map(RpcPayload::Success),
        (safe_u64(), text(), payload).prop_map(|(status_code, details, payload)| {
            RpcPayload::Error {
                status_code,
                details,
                payload,
            }
        }),
    ]
}

fn rpc_message() -> BoxedStrategy<RpcMessage> {
    ("[a-zA-Z]{0,16}", rpc_kind(), rpc_payload())
        .prop_map(|(method, kind, payload)| RpcMessage {
            method,
            kind,
            payload,
        })
        .boxed()
}

fn body() -> BoxedStrategy<Body> {
    prop_oneof![
        doc_message().prop_map(Body::Doc),
        awareness_message().prop_map(Body::Awareness),
        ack_message().prop_map(Body::Ack),
        presence_message().prop_map(Body::Presence),
        rpc_message().prop_map(Body::Rpc),
    ]
    .boxed()
}

fn message() -> BoxedStrategy<Message> {
    (text(), any::<bool>(), body())
        .prop_map(|(document, encrypted, body)| Message {
            document,
            encrypted,
            body,
        })
        .boxed()
}

fn frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        1 => Just(Frame::Ping),
        1 => Just(Frame::Pong),
        8 => message().prop_map(Frame::Message),
    ]
}

fn sidecar_range() -> impl Strategy<Value = SidecarRange> {
    (safe_u64(), safe_u64(), safe_u64()).prop_map(|(client_id, min_clock, max_clock)| {
        SidecarRange {
            client_id,
            min_clock,
            max_clock,
        }
    })
}

fn compaction() -> impl Strategy<Value = Compaction> {
    (
        bytes_up_to(32),
        vec(sidecar_range(), 0..4),
        bytes_up_to(32),
        vec(bytes_up_to(32), 0..4),
    )
        .prop_map(|(sidecar, index, hash, source_hashes)| Compaction {
            sidecar,
            index,
            hash,
            source_hashes,
        })
}

fn content_envelope() -> impl Strategy<Value = ContentEnvelope> {
    (
        bytes_up_to(48),
        vec(bytes_up_to(24), 0..4),
        proptest::option::of(compaction()),
    )
        .prop_map(|(structure_update, sidecars, compaction)| ContentEnvelope {
            structure_update,
            sidecars,
            compaction,
        })
}

/// Valid JSON text, as awareness states must be.
fn json_text() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        text().prop_map(serde_json::Value::String),
    ];
    let value = leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            vec((text(), inner), 0..4)
                .prop_map(|pairs| serde_json::Value::Object(pairs.into_iter().collect())),
        ]
    });
    prop_oneof![
        1 => Just("null".to_owned()),
        1 => Just(" { \"a\" : [1, 2.5e3, \"\\u00e9\"] } ".to_owned()),
        6 => value.prop_map(|v| v.to_string()),
    ]
}

fn awareness_update() -> impl Strategy<Value = AwarenessUpdate> {
    vec((safe_u64(), safe_u64(), json_text()), 0..4).prop_map(|entries| AwarenessUpdate {
        entries: entries
            .into_iter()
            .map(|(client_id, clock, state)| AwarenessEntry {
                client_id,
                clock,
                state,
            })
            .collect(),
    })
}

fn y_message() -> impl Strategy<Value = YMessage> {
    prop_oneof![
        bytes_up_to(32).prop_map(|d| YMessage::Sync(SyncMessage::Step1(d))),
        bytes_up_to(32).prop_map(|d| YMessage::Sync(SyncMessage::Step2(d))),
        bytes_up_to(32).prop_map(|d| YMessage::Sync(SyncMessage::Update(d))),
        awareness_update().prop_map(|u| YMessage::Awareness(u.to_bytes())),
        text().prop_map(|reason| YMessage::Auth(AuthMessage::PermissionDenied { reason })),
        (1u64..=MAX_SAFE_INTEGER).prop_map(|t| YMessage::Auth(AuthMessage::Other(t))),
        Just(YMessage::QueryAwareness),
    ]
}

fn pubsub_frame() -> impl Strategy<Value = PubSubFrame> {
    (
        text(),
        prop_oneof![bytes_up_to(32), message().prop_map(|m| m.to_bytes())],
    )
        .prop_map(|(source_id, message)| PubSubFrame { source_id, message })
}

/// Sidecar entries, some without data (the reference decodes them; the decoder caps their
/// number), and clocks below 2^52 (the encoder's documented range).
fn sidecar_plaintext() -> impl Strategy<Value = SidecarPlaintext> {
    sidecar_plaintext_with_data(0..8, 0..10)
}

/// Sidecars with entry data lengths in `data_len` and entry counts in `entries`.
fn sidecar_plaintext_with_data(
    data_len: std::ops::Range<usize>,
    entries: std::ops::Range<usize>,
) -> impl Strategy<Value = SidecarPlaintext> {
    let entry = (
        prop_oneof![3 => Just(7), 2 => 0u64..4, 1 => safe_u64()],
        prop_oneof![0u64..64, 0u64..(1 << 52)],
        any::<u8>(),
        safe_u64(),
        vec(any::<u8>(), data_len),
    )
        .prop_map(
            |(client_id, clock, content_ref, item_length, data)| SidecarEntry {
                client_id,
                clock,
                content_ref,
                item_length,
                data: Bytes::from(data),
            },
        );
    (vec((text(), text()), 0..3), vec(entry, entries)).prop_map(|(dictionary, entries)| {
        SidecarPlaintext {
            dictionary,
            entries,
        }
    })
}

/// Long runs of one client with consecutive clocks and mostly empty data: compact encodings
/// whose entry counts sit near the decoder's bound, as mutation material.
fn degenerate_sidecar() -> impl Strategy<Value = SidecarPlaintext> {
    (
        0u64..4,
        0usize..40,
        vec(prop_oneof![9 => Just(0usize), 1 => Just(1)], 40),
    )
        .prop_map(|(start, n, data_lens)| SidecarPlaintext {
            dictionary: vec![],
            entries: data_lens[..n]
                .iter()
                .zip(start..)
                .map(|(&len, clock)| SidecarEntry {
                    client_id: 7,
                    clock,
                    content_ref: 4,
                    item_length: 1,
                    data: Bytes::from(vec![0x2a; len]),
                })
                .collect(),
        })
}

/// Doubles other than NaN (`MilestoneMeta` derives `PartialEq`, so NaN ≠ NaN; NaN is covered
/// byte-wise in `milestone_nan_times_round_trip_byte_exact`).
fn time() -> impl Strategy<Value = f64> {
    any_f64().prop_filter("NaN is compared by bytes elsewhere", |f| !f.is_nan())
}

fn milestone_meta_with(times: BoxedStrategy<f64>) -> impl Strategy<Value = MilestoneMeta> {
    let optionals = (
        proptest::option::of(times.clone()),
        proptest::option::of(text()),
        proptest::option::of(text()),
        proptest::option::of(text()),
        proptest::option::of(times.clone()),
    );
    let creator = (any::<bool>(), text()).prop_map(|(user, id)| CreatedBy {
        kind: if user {
            CreatorKind::User
        } else {
            CreatorKind::System
        },
        id,
    });
    (text(), text(), text(), times, optionals, creator).prop_map(
        |(
            document_id,
            id,
            name,
            created_at,
            (deleted_at, deleted_by, lifecycle_state, retention_policy_id, expires_at),
            created_by,
        )| MilestoneMeta {
            document_id,
            id,
            name,
            created_at,
            deleted_at,
            deleted_by,
            lifecycle_state,
            retention_policy_id,
            expires_at,
            created_by,
        },
    )
}

fn milestone_meta() -> impl Strategy<Value = MilestoneMeta> {
    milestone_meta_with(time().boxed())
}

fn milestone() -> impl Strategy<Value = Milestone> {
    (milestone_meta(), bytes_up_to(48)).prop_map(|(meta, snapshot)| Milestone { meta, snapshot })
}

fn milestone_meta_doc() -> impl Strategy<Value = MilestoneMetaDoc> {
    vec(milestone_meta(), 0..4).prop_map(|milestones| MilestoneMetaDoc { milestones })
}

/// Ranges as gaps and lengths from the previous end: always expressible on the wire.
fn id_ranges() -> impl Strategy<Value = Vec<IdRange>> {
    vec(
        (
            prop_oneof![0u64..8, safe_u64()],
            prop_oneof![1u64..8, 1u64..=MAX_SAFE_INTEGER],
        ),
        0..4,
    )
    .prop_map(|gaps| {
        let mut end = 0u64;
        gaps.into_iter()
            .map_while(|(gap, len)| {
                let clock = end.checked_add(gap)?;
                end = clock.checked_add(len)?;
                Some(IdRange { clock, len })
            })
            .collect()
    })
}

/// An IdSet in wire order (clients descending).
fn id_set() -> impl Strategy<Value = IdSet> {
    vec((safe_u64(), id_ranges()), 0..4).prop_map(|clients| {
        let mut clients: Vec<ClientIds> = clients
            .into_iter()
            .map(|(client, ranges)| ClientIds { client, ranges })
            .collect();
        clients.sort_by_key(|c| std::cmp::Reverse(c.client));
        IdSet { clients }
    })
}

fn content_ids() -> impl Strategy<Value = ContentIds> {
    (id_set(), id_set()).prop_map(|(inserts, deletes)| ContentIds { inserts, deletes })
}

/// An IdMap in wire order (clients ascending), attributes drawn from a small shared pool so
/// that the encoder's attribute and name tables are exercised.
fn id_map() -> impl Strategy<Value = IdMap> {
    let pool = vec(
        (
            prop::sample::select(vec!["insert", "insertAt", "delete", "deleteAt", ""]),
            // Real attributes are strings and timestamps; nested values only now and then.
            prop_oneof![4 => any_leaf().boxed(), 1 => any_value()],
        ),
        1..5,
    );
    let clients = vec(
        (safe_u64(), id_ranges(), vec(vec(any::<Index>(), 0..4), 4)),
        0..4,
    );
    (pool, clients).prop_map(|(pool, clients)| {
        let pool: Vec<Arc<Attribute>> = pool
            .into_iter()
            .map(|(name, value)| Attribute::new(name, value))
            .collect();
        let mut clients: Vec<ClientAttributions> = clients
            .into_iter()
            .map(|(client, ranges, picks)| ClientAttributions {
                client,
                ranges: ranges
                    .into_iter()
                    .zip(picks)
                    .map(|(r, picks)| AttributedRange {
                        clock: r.clock,
                        len: r.len,
                        attrs: picks.iter().map(|i| Arc::clone(i.get(&pool))).collect(),
                    })
                    .collect(),
            })
            .collect();
        clients.sort_by_key(|c| c.client);
        IdMap { clients }
    })
}

fn content_map() -> impl Strategy<Value = ContentMap> {
    (id_map(), id_map()).prop_map(|(inserts, deletes)| ContentMap { inserts, deletes })
}

fn versioned_bytes() -> impl Strategy<Value = VersionedBytes> {
    (any::<u8>(), bytes_up_to(48)).prop_map(|(version, data)| VersionedBytes { version, data })
}

// ---------------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------------

/// `decode(encode(x)) == x`, and the decoded value encodes to the same bytes.
fn assert_round_trip<T, E>(
    value: &T,
    encode: impl Fn(&T) -> Bytes,
    decode: impl Fn(Bytes) -> Result<T, E>,
) -> Result<(), TestCaseError>
where
    T: PartialEq + Debug,
    E: Debug,
{
    let bytes = encode(value);
    let decoded = match decode(bytes.clone()) {
        Ok(v) => v,
        Err(e) => {
            return Err(TestCaseError::fail(format!(
                "{value:?} did not decode: {e:?}"
            )));
        }
    };
    prop_assert_eq!(&decoded, value);
    prop_assert_eq!(encode(&decoded), bytes, "re-encoding is not byte-identical");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_round_trips(value in any_value()) {
        assert_round_trip(&value, Any::to_bytes, Any::decode)?;
    }

    #[test]
    fn any_numbers_round_trip_bit_exact(n in any_f64()) {
        // Any's equality already compares bits (all NaNs equal); check NaN payloads too.
        let Ok(Any::Number(back)) = Any::decode(Any::Number(n).to_bytes()) else {
            return Err(TestCaseError::fail(format!("{n:?} did not decode to a number")));
        };
        prop_assert_eq!(back.to_bits(), n.to_bits());
    }

    #[test]
    fn message_round_trips(msg in message()) {
        assert_round_trip(&msg, Message::to_bytes, Message::decode)?;
    }

    #[test]
    fn frame_round_trips(frame in frame()) {
        assert_round_trip(&frame, Frame::to_bytes, Frame::decode)?;
        // `encode` into a buffer agrees with `to_bytes`.
        let mut buf = Vec::new();
        frame.encode(&mut buf);
        prop_assert_eq!(&buf[..], &frame.to_bytes()[..]);
    }

    #[test]
    fn content_envelope_round_trips(env in content_envelope()) {
        assert_round_trip(&env, ContentEnvelope::to_bytes, ContentEnvelope::decode)?;
    }

    #[test]
    fn content_envelope_inside_an_update_round_trips(env in content_envelope(), doc in text()) {
        let msg = Message::doc(doc, DocMessage::Update(Update { version: 2, data: env.to_bytes() }));
        let Ok(Message { body: Body::Doc(DocMessage::Update(u)), .. }) = Message::decode(msg.to_bytes()) else {
            return Err(TestCaseError::fail("update did not decode"));
        };
        prop_assert_eq!(ContentEnvelope::decode(u.data)?, env);
    }

    #[test]
    fn y_message_round_trips(msg in y_message()) {
        assert_round_trip(&msg, YMessage::to_bytes, YMessage::decode)?;
    }

    #[test]
    fn awareness_update_round_trips(update in awareness_update()) {
        assert_round_trip(&update, AwarenessUpdate::to_bytes, AwarenessUpdate::decode)?;
    }

    #[test]
    fn pubsub_frame_round_trips(frame in pubsub_frame()) {
        assert_round_trip(&frame, PubSubFrame::to_bytes, PubSubFrame::decode)?;
    }

    #[test]
    fn message_array_round_trips(messages in vec(message(), 0..6)) {
        let bytes = message_array::encode(&messages);
        let decoded = message_array::decode(bytes.clone())?;
        prop_assert_eq!(&decoded, &messages);
        prop_assert_eq!(message_array::encode(&decoded), bytes);
    }

    #[test]
    fn sidecar_plaintext_round_trips(sidecar in sidecar_plaintext()) {
        assert_round_trip(&sidecar, SidecarPlaintext::to_bytes, SidecarPlaintext::decode)?;
    }

    #[test]
    fn milestone_meta_round_trips(meta in milestone_meta()) {
        assert_round_trip(&meta, MilestoneMeta::to_bytes, MilestoneMeta::decode)?;
    }

    #[test]
    fn milestone_round_trips(milestone in milestone()) {
        assert_round_trip(&milestone, Milestone::to_bytes, Milestone::decode)?;
    }

    #[test]
    fn milestone_meta_doc_round_trips(doc in milestone_meta_doc()) {
        assert_round_trip(&doc, MilestoneMetaDoc::to_bytes, MilestoneMetaDoc::decode)?;
    }

    #[test]
    fn milestone_nan_times_round_trip_byte_exact(
        meta in milestone_meta_with(any::<u64>().prop_map(f64::from_bits).boxed()),
    ) {
        let bytes = meta.to_bytes();
        let decoded = MilestoneMeta::decode(bytes.clone())?;
        prop_assert_eq!(decoded.to_bytes(), bytes);
        prop_assert_eq!(decoded.created_at.to_bits(), meta.created_at.to_bits());
    }

    #[test]
    fn content_ids_round_trip(ids in content_ids()) {
        assert_round_trip(&ids, ContentIds::to_bytes, ContentIds::decode)?;
    }

    #[test]
    fn content_map_round_trips(map in content_map()) {
        assert_round_trip(&map, ContentMap::to_bytes, ContentMap::decode)?;
    }

    /// Clients in any order and overlapping or empty ranges are normalised by the encoder;
    /// the normal form is a fixpoint.
    #[test]
    fn attribution_normal_form_is_a_fixpoint(
        ids in (
            vec((safe_u64(), vec((safe_u64(), safe_u64()), 0..4)), 0..4),
            vec((safe_u64(), vec((safe_u64(), safe_u64()), 0..4)), 0..4),
        ),
        mut map in content_map(),
    ) {
        let set = |clients: Vec<(u64, Vec<(u64, u64)>)>| IdSet {
            clients: clients
                .into_iter()
                .map(|(client, ranges)| ClientIds {
                    client,
                    ranges: ranges.into_iter().map(|(clock, len)| IdRange { clock, len }).collect(),
                })
                .collect(),
        };
        let ids = ContentIds { inserts: set(ids.0), deletes: set(ids.1) };
        let bytes = ids.to_bytes();
        prop_assert_eq!(ContentIds::decode(bytes.clone())?.to_bytes(), bytes);

        map.inserts.clients.reverse();
        for c in &mut map.deletes.clients {
            // Out of order, so clamped by the encoder; a first gap above 2^53 − 1 would be
            // outside the lib0 range.
            c.ranges.retain(|r| r.clock <= MAX_SAFE_INTEGER);
            c.ranges.reverse();
        }
        let bytes = map.to_bytes();
        prop_assert_eq!(ContentMap::decode(bytes.clone())?.to_bytes(), bytes);
    }

    #[test]
    fn versioned_bytes_round_trip(v in versioned_bytes()) {
        assert_round_trip(&v, VersionedBytes::to_bytes, VersionedBytes::decode)?;
    }
}

#[test]
fn rpc_null_and_undefined_error_payloads_read_back_as_none() {
    for p in [Any::Null, Any::Undefined] {
        let msg = Message::rpc(
            "m",
            RpcMessage {
                method: "m".into(),
                kind: RpcKind::Request,
                payload: RpcPayload::Error {
                    status_code: 500,
                    details: "x".into(),
                    payload: Some(p),
                },
            },
        );
        let Ok(Message {
            body: Body::Rpc(rpc),
            ..
        }) = Message::decode(msg.to_bytes())
        else {
            panic!("rpc did not decode");
        };
        assert!(matches!(
            rpc.payload,
            RpcPayload::Error { payload: None, .. }
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// Totality: any bytes give Ok or Err, and what is accepted re-encodes to a fixpoint
// ---------------------------------------------------------------------------------------------

/// If `input` decodes, its re-encoding decodes to a value that re-encodes to the same bytes
/// (and, with `same_value`, to the same value).
fn check_fixpoint<T: PartialEq + Debug>(
    name: &str,
    input: &Bytes,
    decode: impl Fn(Bytes) -> Result<T, DecodeError>,
    encode: impl Fn(&T) -> Bytes,
    same_value: bool,
) {
    let Ok(value) = decode(input.clone()) else {
        return;
    };
    let bytes = encode(&value);
    let again = decode(bytes.clone()).unwrap_or_else(|e| {
        panic!(
            "{name}: re-encoding of accepted input {} does not decode ({e:?}): {value:?}",
            hex::encode(input)
        )
    });
    assert_eq!(
        encode(&again),
        bytes,
        "{name}: not a fixpoint for {}",
        hex::encode(input)
    );
    if same_value {
        assert_eq!(
            again,
            value,
            "{name}: value changed for {}",
            hex::encode(input)
        );
    }
}

/// Runs every decoder of the crate on `input`.
fn decode_everything(input: &Bytes) {
    check_fixpoint("frame", input, Frame::decode, Frame::to_bytes, true);
    check_fixpoint("message", input, Message::decode, Message::to_bytes, true);
    check_fixpoint(
        "content envelope",
        input,
        ContentEnvelope::decode,
        ContentEnvelope::to_bytes,
        true,
    );
    check_fixpoint(
        "y-protocols",
        input,
        YMessage::decode,
        YMessage::to_bytes,
        true,
    );
    check_fixpoint(
        "awareness update",
        input,
        AwarenessUpdate::decode,
        AwarenessUpdate::to_bytes,
        true,
    );
    check_fixpoint(
        "pub/sub",
        input,
        PubSubFrame::decode,
        PubSubFrame::to_bytes,
        true,
    );
    check_fixpoint(
        "message array",
        input,
        message_array::decode,
        |m: &Vec<Message>| message_array::encode(m),
        true,
    );
    check_fixpoint("lib0 Any", input, Any::decode, Any::to_bytes, true);
    // Sidecar clocks of 2^52 and above are outside the encoder's documented range.
    if let Ok(s) = SidecarPlaintext::decode(input.clone())
        && s.entries.iter().all(|e| e.clock < 1 << 52)
    {
        check_fixpoint(
            "sidecar",
            input,
            SidecarPlaintext::decode,
            SidecarPlaintext::to_bytes,
            true,
        );
    }
    // Milestone times may be NaN, which `PartialEq` on f64 never equates: compare bytes.
    check_fixpoint(
        "milestone meta",
        input,
        MilestoneMeta::decode,
        MilestoneMeta::to_bytes,
        false,
    );
    check_fixpoint(
        "milestone",
        input,
        Milestone::decode,
        Milestone::to_bytes,
        false,
    );
    check_fixpoint(
        "milestone meta doc",
        input,
        MilestoneMetaDoc::decode,
        MilestoneMetaDoc::to_bytes,
        false,
    );
    // IdSet clients are re-sorted by the encoder, so only the bytes are a fixpoint.
    check_fixpoint(
        "content ids",
        input,
        ContentIds::decode,
        ContentIds::to_bytes,
        false,
    );
    check_fixpoint(
        "content map",
        input,
        ContentMap::decode,
        ContentMap::to_bytes,
        true,
    );
    check_fixpoint(
        "versioned bytes",
        input,
        VersionedBytes::decode,
        VersionedBytes::to_bytes,
        true,
    );
    #[cfg(feature = "merkle")]
    {
        let _ = teleportal_core::merkle::MerkleTree::decode(input.clone());
    }
    #[cfg(feature = "codec")]
    codec_agrees_with_message_array(input);
}

/// The streaming codec never panics and, on a complete MessageArray, yields what the
/// whole-body decoder yields.
#[cfg(feature = "codec")]
fn codec_agrees_with_message_array(input: &Bytes) {
    use teleportal_core::codec::MessageArrayCodec;
    use tokio_util::codec::Decoder as _;

    let mut codec = MessageArrayCodec::with_max_message_size(1 << 16);
    let mut buf = bytes::BytesMut::from(&input[..]);
    let mut streamed = Vec::new();
    let complete = loop {
        match codec.decode(&mut buf) {
            Ok(Some(m)) => streamed.push(m),
            Ok(None) => break buf.is_empty(),
            Err(_) => break false,
        }
    };
    if let Ok(whole) = message_array::decode(input.clone()) {
        assert!(
            complete,
            "codec rejected the valid message array {}",
            hex::encode(input)
        );
        assert_eq!(streamed, whole, "codec and message_array disagree");
    }
}

/// Valid encodings of every type, to mutate.
fn valid_encoding() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        4 => message().prop_map(|m| m.to_bytes()),
        1 => frame().prop_map(|f| f.to_bytes()),
        2 => content_envelope().prop_map(|e| e.to_bytes()),
        2 => y_message().prop_map(|m| m.to_bytes()),
        1 => awareness_update().prop_map(|u| u.to_bytes()),
        1 => pubsub_frame().prop_map(|f| f.to_bytes()),
        2 => vec(message(), 0..4).prop_map(|m| message_array::encode(&m)),
        2 => any_value().prop_map(|a| a.to_bytes()),
        2 => sidecar_plaintext().prop_map(|s| s.to_bytes()),
        1 => degenerate_sidecar().prop_map(|s| s.to_bytes()),
        1 => milestone().prop_map(|m| m.to_bytes()),
        1 => milestone_meta_doc().prop_map(|d| d.to_bytes()),
        1 => content_ids().prop_map(|c| c.to_bytes()),
        2 => content_map().prop_map(|c| c.to_bytes()),
        1 => versioned_bytes().prop_map(|v| v.to_bytes()),
    ]
}

#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(Index, u8),
    Set(Index, u8),
    Insert(Index, u8),
    Delete(Index),
    Truncate(Index),
    Append(Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), 0u8..8).prop_map(|(i, bit)| Mutation::FlipBit(i, bit)),
        3 => (any::<Index>(), prop_oneof![Just(0u8), Just(0x7f), Just(0x80), Just(0xff), any::<u8>()])
            .prop_map(|(i, b)| Mutation::Set(i, b)),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        2 => any::<Index>().prop_map(Mutation::Delete),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => vec(any::<u8>(), 1..40).prop_map(Mutation::Append),
    ]
}

fn mutate(bytes: &[u8], mutations: &[Mutation]) -> Bytes {
    let mut b = bytes.to_vec();
    for m in mutations {
        match m {
            Mutation::Insert(i, v) => {
                let at = i.index(b.len() + 1);
                b.insert(at, *v);
            }
            Mutation::Append(tail) => b.extend_from_slice(tail),
            _ if b.is_empty() => {}
            Mutation::FlipBit(i, bit) => {
                let at = i.index(b.len());
                b[at] ^= 1 << bit;
            }
            Mutation::Set(i, v) => {
                let at = i.index(b.len());
                b[at] = *v;
            }
            Mutation::Delete(i) => {
                let at = i.index(b.len());
                b.remove(at);
            }
            Mutation::Truncate(i) => {
                let at = i.index(b.len());
                b.truncate(at);
            }
        }
    }
    Bytes::from(b)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_decode_or_error(
        bytes in prop_oneof![
            vec(any::<u8>(), 0..512),
            // Past the magic, so the envelope decoders look at the rest.
            vec(any::<u8>(), 0..256).prop_map(|tail| [b"YJS\x01".as_slice(), &tail].concat()),
        ],
    ) {
        decode_everything(&Bytes::from(bytes));
    }

    #[test]
    fn mutated_valid_encodings_decode_or_error(
        valid in valid_encoding(),
        mutations in vec(mutation(), 1..4),
    ) {
        // The unmutated encoding goes through every decoder too.
        decode_everything(&valid);
        decode_everything(&mutate(&valid, &mutations));
    }

    /// RPC and presence bodies nest `Any` values: mutate them more heavily.
    #[test]
    fn mutated_rpc_and_presence_payloads_decode_or_error(
        msg in (text(), prop_oneof![rpc_message().prop_map(Body::Rpc), presence_message().prop_map(Body::Presence)])
            .prop_map(|(d, body)| Message::new(d, false, body)),
        mutations in vec(mutation(), 1..6),
    ) {
        decode_everything(&mutate(&msg.to_bytes(), &mutations));
    }
}

/// Regression: a group of empty entries passed the decoder's entry-count bound thanks to
/// padding after the last group, and the canonical re-encoding (without the padding) was then
/// rejected by the same decoder.
#[test]
fn sidecar_padding_cannot_smuggle_entries_the_re_encoding_rejects() {
    let entry = |clock| SidecarEntry {
        client_id: 7,
        clock,
        content_ref: 4,
        item_length: 1,
        data: Bytes::new(),
    };
    let sidecar = SidecarPlaintext {
        dictionary: vec![],
        entries: (0..20).map(entry).collect(),
    };
    let mut padded = sidecar.to_bytes().to_vec();
    padded.extend_from_slice(&[0; 32]);
    let padded = Bytes::from(padded);
    if let Ok(decoded) = SidecarPlaintext::decode(padded.clone()) {
        assert_eq!(
            SidecarPlaintext::decode(decoded.to_bytes()),
            Ok(decoded),
            "accepted {} but not its re-encoding",
            hex::encode(&padded)
        );
    }
    decode_everything(&padded);
}

// ---------------------------------------------------------------------------------------------
// The tokio-util codec
// ---------------------------------------------------------------------------------------------

#[cfg(feature = "codec")]
mod codec {
    use super::*;
    use bytes::BytesMut;
    use teleportal_core::codec::{CodecError, MessageArrayCodec};
    use tokio_util::codec::{Decoder, Encoder};

    /// Encodes `messages` through the codec; returns the stream and each frame's end offset.
    fn stream_of(messages: &[Message]) -> (Vec<u8>, Vec<usize>) {
        let mut codec = MessageArrayCodec::new();
        let mut buf = BytesMut::new();
        let mut ends = Vec::new();
        for m in messages {
            Encoder::<&Message>::encode(&mut codec, m, &mut buf).expect("encode");
            ends.push(buf.len());
        }
        (buf.to_vec(), ends)
    }

    /// Feeds `stream` in the given chunks, decoding until `Ok(None)` after each.
    fn decode_in_chunks(stream: &[u8], cuts: &[usize]) -> Vec<Message> {
        let mut codec = MessageArrayCodec::new();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut start = 0;
        for &end in cuts.iter().chain(std::iter::once(&stream.len())) {
            buf.extend_from_slice(&stream[start..end]);
            start = end;
            while let Some(m) = codec.decode(&mut buf).expect("valid stream") {
                out.push(m);
            }
        }
        assert!(buf.is_empty(), "{} bytes left over", buf.len());
        assert!(codec.decode_eof(&mut buf).expect("clean eof").is_none());
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn codec_stream_is_a_message_array(messages in vec(message(), 0..6)) {
            let (stream, _) = stream_of(&messages);
            prop_assert_eq!(&stream[..], &message_array::encode(&messages)[..]);
        }

        #[test]
        fn codec_decodes_byte_by_byte(messages in vec(message(), 0..6)) {
            let (stream, ends) = stream_of(&messages);
            let mut codec = MessageArrayCodec::new();
            let mut buf = BytesMut::new();
            let mut out = Vec::new();
            let mut frame_start = 0;
            for (i, &byte) in stream.iter().enumerate() {
                buf.extend_from_slice(&[byte]);
                let fed = i + 1;
                match codec.decode(&mut buf)? {
                    Some(m) => {
                        // A message comes out exactly when its last byte arrives.
                        prop_assert_eq!(Some(&fed), ends.get(out.len()));
                        prop_assert!(buf.is_empty());
                        out.push(m);
                        frame_start = fed;
                        prop_assert!(codec.decode(&mut buf)?.is_none());
                    }
                    None => {
                        // Incomplete: nothing was consumed.
                        prop_assert!(!ends.contains(&fed), "frame ending at {} not yielded", fed);
                        prop_assert_eq!(buf.len(), fed - frame_start);
                    }
                }
            }
            prop_assert!(buf.is_empty());
            prop_assert_eq!(out, messages);
        }

        #[test]
        fn codec_decodes_at_random_splits(
            messages in vec(message(), 0..6),
            cuts in vec(any::<Index>(), 0..8),
        ) {
            let (stream, _) = stream_of(&messages);
            let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
            cuts.sort_unstable();
            prop_assert_eq!(decode_in_chunks(&stream, &cuts), messages);
        }

        #[test]
        fn codec_decodes_at_every_split(messages in vec(message(), 1..3)) {
            let (stream, _) = stream_of(&messages);
            for cut in 0..=stream.len() {
                prop_assert_eq!(&decode_in_chunks(&stream, &[cut]), &messages);
            }
        }

        #[test]
        fn codec_payloads_are_slices_of_the_read_buffer(
            messages in vec((text(), update()).prop_map(|(d, u)| Message::doc(d, DocMessage::Update(u))), 1..4),
        ) {
            let (stream, _) = stream_of(&messages);
            let mut buf = BytesMut::from(&stream[..]);
            let range = buf.as_ptr_range();
            let mut codec = MessageArrayCodec::new();
            while let Some(m) = codec.decode(&mut buf)? {
                let Body::Doc(DocMessage::Update(u)) = &m.body else {
                    return Err(TestCaseError::fail("not an update"));
                };
                if !u.data.is_empty() {
                    prop_assert!(range.contains(&u.data.as_ptr()), "update data was copied");
                }
            }
        }

        #[test]
        fn codec_rejects_declared_lengths_above_the_limit(
            max in 0usize..100_000,
            excess in 1u64..1 << 40,
            body in vec(any::<u8>(), 0..16),
        ) {
            let mut codec = MessageArrayCodec::with_max_message_size(max);
            let declared = max as u64 + excess;
            let mut header = Vec::new();
            teleportal_core::lib0::write_var_uint(&mut header, declared);
            // The header alone is enough: the body has not arrived.
            let mut buf = BytesMut::from(&header[..]);
            let err = codec.decode(&mut buf);
            prop_assert!(
                matches!(
                    err,
                    Err(CodecError::Decode(DecodeError::MessageTooLarge { size, max: m }))
                        if size == declared && m == max
                ),
                "{:?}", err
            );
            buf.extend_from_slice(&body);
            prop_assert!(codec.decode(&mut buf).is_err());
        }

        #[test]
        fn codec_reserves_nothing_for_a_declared_length(declared in 1u64 << 20..=16 << 20) {
            let mut codec = MessageArrayCodec::new();
            let mut header = Vec::new();
            teleportal_core::lib0::write_var_uint(&mut header, declared);
            let mut buf = BytesMut::new();
            buf.extend_from_slice(&header);
            buf.extend_from_slice(b"YJS\x01");
            let before = buf.capacity();
            prop_assert!(codec.decode(&mut buf)?.is_none());
            prop_assert!(buf.capacity() <= before.max(64), "capacity grew to {}", buf.capacity());
            prop_assert_eq!(buf.len(), header.len() + 4);
        }
    }

    #[test]
    fn encoder_rejects_messages_above_the_limit() {
        let msg = Message::doc(
            "d",
            DocMessage::Update(Update {
                version: 2,
                data: Bytes::from(vec![0u8; 100]),
            }),
        );
        let size = msg.to_bytes().len();
        let mut buf = BytesMut::new();
        let mut codec = MessageArrayCodec::with_max_message_size(size - 1);
        assert!(matches!(
            Encoder::<&Message>::encode(&mut codec, &msg, &mut buf),
            Err(CodecError::Decode(DecodeError::MessageTooLarge { .. }))
        ));
        assert!(buf.is_empty(), "nothing written for a rejected message");
        let mut codec = MessageArrayCodec::with_max_message_size(size);
        Encoder::<&Message>::encode(&mut codec, &msg, &mut buf).expect("at the limit");
        assert_eq!(codec.decode(&mut buf).expect("decodes"), Some(msg));
    }

    /// A length prefix that never ends (`80 80 80 …`) must not be buffered without bound.
    #[test]
    fn endless_length_prefix_is_rejected() {
        let max = 1024;
        let mut codec = MessageArrayCodec::with_max_message_size(max);
        let mut buf = BytesMut::new();
        let mut rejected = false;
        for _ in 0..4 * max {
            buf.extend_from_slice(&[0x80]);
            match codec.decode(&mut buf) {
                Ok(None) => {}
                Ok(Some(m)) => panic!("decoded {m:?} from continuation bytes"),
                Err(_) => {
                    rejected = true;
                    break;
                }
            }
        }
        assert!(
            rejected,
            "{} continuation bytes buffered without error",
            buf.len()
        );
        assert!(buf.len() <= max + 1);
    }
}

// ---------------------------------------------------------------------------------------------
// Zero copy
// ---------------------------------------------------------------------------------------------

/// Whether `part` (non-empty) lies inside `whole`'s memory.
fn is_slice_of(part: &Bytes, whole: &Bytes) -> bool {
    let range = whole.as_ptr_range();
    let start = part.as_ptr();
    range.contains(&start) && part.len() <= range.end as usize - start as usize
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn message_payloads_are_slices_of_the_input(
        doc in text(),
        data in vec(any::<u8>(), 1..64).prop_map(Bytes::from),
        which in 0u8..4,
    ) {
        let body = match which {
            0 => DocMessage::Update(Update { version: 2, data: data.clone() }),
            1 => DocMessage::SyncStep2(Update { version: 2, data: data.clone() }),
            2 => DocMessage::SyncStep1 { state_vector: data.clone() },
            _ => DocMessage::SyncDone,
        };
        let msg = if which == 3 {
            Message::awareness(doc, AwarenessMessage::Update(data.clone()))
        } else {
            Message::doc(doc, body)
        };
        let input = msg.to_bytes();
        let payload = match Message::decode(input.clone())?.body {
            Body::Doc(DocMessage::Update(u) | DocMessage::SyncStep2(u)) => u.data,
            Body::Doc(DocMessage::SyncStep1 { state_vector }) => state_vector,
            Body::Awareness(AwarenessMessage::Update(u)) => u,
            other => return Err(TestCaseError::fail(format!("unexpected {other:?}"))),
        };
        prop_assert_eq!(&payload, &data);
        prop_assert!(is_slice_of(&payload, &input), "payload was copied");
        // Through Frame and MessageArray as well.
        let Frame::Message(Message { body: Body::Doc(DocMessage::Update(u) | DocMessage::SyncStep2(u)), .. }) =
            Frame::decode(input.clone())?
        else {
            return Ok(());
        };
        prop_assert!(is_slice_of(&u.data, &input));
        let array = message_array::encode(&[msg]);
        let [Message { body: Body::Doc(DocMessage::Update(u) | DocMessage::SyncStep2(u)), .. }] =
            &message_array::decode(array.clone())?[..]
        else {
            return Err(TestCaseError::fail("message array lost the update"));
        };
        prop_assert!(is_slice_of(&u.data, &array));
    }

    #[test]
    fn y_message_payloads_are_slices_of_the_input(
        data in vec(any::<u8>(), 1..64).prop_map(Bytes::from),
        which in 0u8..3,
    ) {
        let sync = match which {
            0 => SyncMessage::Update(data.clone()),
            1 => SyncMessage::Step2(data.clone()),
            _ => SyncMessage::Step1(data.clone()),
        };
        let input = YMessage::Sync(sync).to_bytes();
        let YMessage::Sync(SyncMessage::Update(d) | SyncMessage::Step2(d) | SyncMessage::Step1(d)) =
            YMessage::decode(input.clone())?
        else {
            return Err(TestCaseError::fail("not a sync message"));
        };
        prop_assert_eq!(&d, &data);
        prop_assert!(is_slice_of(&d, &input), "payload was copied");
    }

    #[test]
    fn content_envelope_fields_are_slices_of_the_input(env in content_envelope()) {
        let input = env.to_bytes();
        let decoded = ContentEnvelope::decode(input.clone())?;
        let mut parts = vec![&decoded.structure_update];
        parts.extend(&decoded.sidecars);
        if let Some(c) = &decoded.compaction {
            parts.push(&c.sidecar);
            parts.push(&c.hash);
            parts.extend(&c.source_hashes);
        }
        for part in parts.into_iter().filter(|p| !p.is_empty()) {
            prop_assert!(is_slice_of(part, &input), "envelope field was copied");
        }
    }
}
