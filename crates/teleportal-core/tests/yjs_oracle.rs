//! yjs 13.6 itself is the oracle for `teleportal_core::yjs`: on generated histories of
//! concurrent `Y.Doc`s (`tests/js/yjs-oracle.mjs`), every function returns the bytes yjs
//! returns, and a compaction applied to a fresh `Y.Doc` gives the doc yjs's merge gives.
//!
//! ```text
//! cargo test -p teleportal-core --test yjs_oracle                      # 10,000 cases
//! YJS_ORACLE_CASES=500 YJS_ORACLE_SEED=7 cargo test -p teleportal-core --test yjs_oracle
//! YJS_ORACLE_SEED=S YJS_ORACLE_ONLY=K cargo test -p teleportal-core --test yjs_oracle  # case K
//! cargo test --release -p teleportal-core --test yjs_oracle -- --ignored  # 200,000 cases,
//!     a new seed each run unless YJS_ORACLE_SEED is set; YJS_ORACLE_LONG_CASES for the count
//! ```
//!
//! A case is a pure function of (seed, index), so a failure names both and
//! `node tests/js/yjs-oracle.mjs --seed S --only K` prints that case alone. Each function is
//! reported once, at its first mismatch, with its inputs shrunk (updates dropped, state-vector
//! entries dropped) while yjs and we still disagree.
//!
//! Needs node and `npm ci` in `tests/js`; without them the test skips, or fails under `CI`.

use std::fmt::{self, Write as _};
use std::io::{BufRead, BufReader, Read, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use teleportal_core::yjs;

/// The seed of the default run; any other is as good, this one is fixed so CI is repeatable.
const DEFAULT_SEED: u64 = 20_240_613;
const DEFAULT_CASES: u64 = 10_000;
const LONG_CASES: u64 = 200_000;
/// Calls to yjs one shrink may make: enough to drop every update of a case one by one.
const SHRINK_BUDGET: usize = 400;

#[test]
fn update_functions_match_yjs_byte_for_byte() {
    let seed = env_u64("YJS_ORACLE_SEED").unwrap_or(DEFAULT_SEED);
    let (skip, cases) = match env_u64("YJS_ORACLE_ONLY") {
        Some(only) => (only, 1),
        None => (
            env_u64("YJS_ORACLE_SKIP").unwrap_or(0),
            env_u64("YJS_ORACLE_CASES").unwrap_or(DEFAULT_CASES),
        ),
    };
    run(seed, skip, cases);
}

#[test]
#[ignore = "long run (minutes): cargo test --release -p teleportal-core --test yjs_oracle -- --ignored"]
fn update_functions_match_yjs_on_a_long_run() {
    let seed = env_u64("YJS_ORACLE_SEED").unwrap_or_else(|| {
        // A new seed each run explores new cases; the report prints it.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(DEFAULT_SEED, |d| d.as_secs())
    });
    run(
        seed,
        0,
        env_u64("YJS_ORACLE_LONG_CASES").unwrap_or(LONG_CASES),
    );
}

/// Merges of many updates take another path (a heap instead of V8's sort): on the recorded
/// sessions, hundreds to thousands of updates at once, they give yjs's bytes too.
#[test]
fn merges_of_recorded_sessions_match_yjs() {
    if !yjs_available() {
        return;
    }
    let mut yjs = Yjs::spawn();
    for (name, bytes) in [
        ("1k", &include_bytes!("../fixtures/yjs-history-1k.bin")[..]),
        (
            "10k",
            &include_bytes!("../fixtures/yjs-history-10k.bin")[..],
        ),
    ] {
        let mut updates = Vec::new();
        let mut rest = bytes;
        while rest.len() >= 4 {
            let len = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
            updates.push(rest[4..4 + len].to_vec());
            rest = &rest[4 + len..];
        }
        for size in [64, 500, updates.len()] {
            for chunk in updates.chunks(size).take(3) {
                let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
                let hexes: Vec<Value> = chunk.iter().map(|u| Value::from(hex::encode(u))).collect();
                let expected = yjs.call(Func::MergeV1, &[Value::Array(hexes)]);
                let ours = yjs::merge_updates_v1(&refs).map(Out::Bytes).ok();
                assert!(
                    ours == expected,
                    "{name}: merging {} updates differs from yjs",
                    chunk.len()
                );
                let v2: Vec<Vec<u8>> = chunk
                    .iter()
                    .map(|u| yjs::convert_update_v1_to_v2(u).unwrap())
                    .collect();
                let refs: Vec<&[u8]> = v2.iter().map(Vec::as_slice).collect();
                let hexes: Vec<Value> = v2.iter().map(|u| Value::from(hex::encode(u))).collect();
                let expected = yjs.call(Func::MergeV2, &[Value::Array(hexes)]);
                let ours = yjs::merge_updates_v2(&refs).map(Out::Bytes).ok();
                assert!(
                    ours == expected,
                    "{name}: merging {} V2 updates differs from yjs",
                    chunk.len()
                );
            }
        }
    }
}

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{name}={value:?} is not a number: {e}")),
    )
}

fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/js")
}

/// Whether node and the pinned yjs of `tests/js` are there. Without them the test is skipped
/// and says why, unless `CI` is set: then it fails.
fn yjs_available() -> bool {
    let why = match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => {
            if js_dir().join("node_modules/yjs").is_dir() {
                return true;
            }
            "tests/js/node_modules/yjs is missing: run `npm ci` in tests/js".to_owned()
        }
        Ok(out) => format!("`node --version` failed with {}", out.status),
        Err(e) => format!("node is not installed ({e})"),
    };
    assert!(
        std::env::var_os("CI").is_none(),
        "yjs (under node) is required under CI: {why}"
    );
    eprintln!("skipping: {why}");
    false
}

fn run(seed: u64, skip: u64, cases: u64) {
    if !yjs_available() {
        return;
    }
    eprintln!("yjs oracle: seed {seed}, cases {skip}..{}", skip + cases);
    let started = Instant::now();
    let mut generator = Generator::spawn(seed, skip, cases);
    let mut yjs = Yjs::spawn();
    let mut failures: Vec<Option<String>> = vec![None; Func::ALL.len()];
    let mut checks = [0_u64; Func::ALL.len()];
    let mut ours_time = Duration::ZERO;
    let mut seen = 0_u64;

    while let Some(case) = generator.next_case() {
        seen += 1;
        let index = case["index"].as_u64().expect("case index");
        for check in checks_of(&case) {
            let slot = check.func as usize;
            if failures[slot].is_some() {
                continue; // reported already: one report per function
            }
            let Some(expected) = Out::from_case(check.func, check.expected) else {
                continue; // yjs threw: nothing to compare with
            };
            let t = Instant::now();
            let ours = ours(check.func, &check.input, &mut yjs, Some(&expected));
            ours_time += t.elapsed();
            checks[slot] += 1;
            if ours != expected {
                failures[slot] = Some(report(seed, index, &check, expected, ours, &mut yjs));
            }
        }
    }
    let generation = generator.finish(seen, cases);
    eprintln!(
        "yjs oracle: {seen} cases checked in {:.2} s (our functions: {:.2} s); {generation}",
        started.elapsed().as_secs_f64(),
        ours_time.as_secs_f64(),
    );
    let counts: Vec<String> = Func::ALL
        .iter()
        .map(|f| format!("{} {}", f.name(), checks[*f as usize]))
        .collect();
    eprintln!(
        "yjs oracle: comparisons per function: {}",
        counts.join(", ")
    );
    let failures: Vec<String> = failures.into_iter().flatten().collect();
    assert!(
        failures.is_empty(),
        "{} of {} functions differ from yjs (seed {seed}):\n\n{}",
        failures.len(),
        Func::ALL.len(),
        failures.join("\n\n")
    );
}

// -------------------------------------------------------------------------------------------
// The functions under test

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Func {
    MergeV1,
    MergeV2,
    DiffV1,
    DiffV2,
    SvV1,
    SvV2,
    V1ToV2,
    V2ToV1,
    MetaV1,
    MetaV2,
    CompactV1,
    CompactV2,
}

impl Func {
    const ALL: [Func; 12] = [
        Func::MergeV1,
        Func::MergeV2,
        Func::DiffV1,
        Func::DiffV2,
        Func::SvV1,
        Func::SvV2,
        Func::V1ToV2,
        Func::V2ToV1,
        Func::MetaV1,
        Func::MetaV2,
        Func::CompactV1,
        Func::CompactV2,
    ];

    fn name(self) -> &'static str {
        match self {
            Func::MergeV1 => "merge_updates_v1",
            Func::MergeV2 => "merge_updates_v2",
            Func::DiffV1 => "diff_update_v1",
            Func::DiffV2 => "diff_update_v2",
            Func::SvV1 => "encode_state_vector_from_update_v1",
            Func::SvV2 => "encode_state_vector_from_update_v2",
            Func::V1ToV2 => "convert_update_v1_to_v2",
            Func::V2ToV1 => "convert_update_v2_to_v1",
            Func::MetaV1 => "parse_update_meta_v1",
            Func::MetaV2 => "parse_update_meta_v2",
            Func::CompactV1 => "compact_updates_v1",
            Func::CompactV2 => "compact_updates_v2",
        }
    }

    /// The name of yjs's side in `yjs-oracle.mjs` (its `CALLS`, and the case fields).
    fn field(self) -> &'static str {
        match self {
            Func::MergeV1 => "merge_v1",
            Func::MergeV2 => "merge_v2",
            Func::DiffV1 => "diff_v1",
            Func::DiffV2 => "diff_v2",
            Func::SvV1 => "sv_v1",
            Func::SvV2 => "sv_v2",
            Func::V1ToV2 => "v1_to_v2",
            Func::V2ToV1 => "v2_to_v1",
            Func::MetaV1 => "meta_v1",
            Func::MetaV2 => "meta_v2",
            Func::CompactV1 => "apply_v1",
            Func::CompactV2 => "apply_v2",
        }
    }

    /// Whether the function reads V2 updates.
    fn v2(self) -> bool {
        matches!(
            self,
            Func::MergeV2
                | Func::DiffV2
                | Func::SvV2
                | Func::V2ToV1
                | Func::MetaV2
                | Func::CompactV2
        )
    }

    fn takes_list(self) -> bool {
        matches!(
            self,
            Func::MergeV1 | Func::MergeV2 | Func::CompactV1 | Func::CompactV2
        )
    }

    fn takes_state_vector(self) -> bool {
        matches!(self, Func::DiffV1 | Func::DiffV2)
    }
}

/// What a function was called with, kept in a form that shrinks.
#[derive(Clone, Debug)]
enum Subject {
    /// The update list itself (merges, compactions).
    Updates(Vec<Vec<u8>>),
    /// yjs's merge of these updates, in the format of the function (the functions on the
    /// case's `merge_v1`/`merge_v2`).
    MergeOf(Vec<Vec<u8>>),
    /// One update as a doc emitted it (the case's `each`).
    Raw(Vec<u8>),
}

#[derive(Clone, Debug)]
struct Input {
    subject: Subject,
    /// yjs's merge of the subject's updates when known (from the case), so the main loop asks
    /// yjs nothing but to apply our compactions.
    merged: Option<Vec<u8>>,
    /// For the diffs.
    state_vector: Vec<u8>,
}

impl Input {
    fn len(&self) -> usize {
        match &self.subject {
            Subject::Updates(l) | Subject::MergeOf(l) => l.len(),
            Subject::Raw(_) => 0,
        }
    }
}

struct Check<'a> {
    func: Func,
    /// The case field it came from, for the report.
    origin: String,
    input: Input,
    expected: &'a Value,
}

fn hex_list(v: &Value) -> Vec<Vec<u8>> {
    v.as_array()
        .expect("a list of updates")
        .iter()
        .map(|u| hex::decode(u.as_str().expect("hex")).expect("hex"))
        .collect()
}

/// Every comparison one case holds.
fn checks_of(case: &Value) -> Vec<Check<'_>> {
    let v1 = hex_list(&case["updates_v1"]);
    let v2 = hex_list(&case["updates_v2"]);
    let sv = hex::decode(case["state_vector"].as_str().expect("state_vector")).expect("hex");
    let merged = |field: &str| case[field].as_str().map(|h| hex::decode(h).expect("hex"));
    let (merged_v1, merged_v2) = (merged("merge_v1"), merged("merge_v2"));
    let mut out = Vec::new();
    for func in Func::ALL {
        let updates = if func.v2() { &v2 } else { &v1 };
        let merged = if func.v2() { &merged_v2 } else { &merged_v1 };
        let subject = if func.takes_list() {
            Subject::Updates(updates.clone())
        } else {
            Subject::MergeOf(updates.clone())
        };
        out.push(Check {
            func,
            origin: func.field().to_owned(),
            input: Input {
                subject,
                merged: merged.clone(),
                state_vector: sv.clone(),
            },
            expected: &case[func.field()],
        });
        if func.takes_list() {
            continue;
        }
        let each = case["each"][func.field()].as_array().expect("each");
        for (i, expected) in each.iter().enumerate() {
            out.push(Check {
                func,
                origin: format!("each.{}[{i}]", func.field()),
                input: Input {
                    subject: Subject::Raw(updates[i].clone()),
                    merged: None,
                    state_vector: sv.clone(),
                },
                expected,
            });
        }
    }
    out
}

/// A result, ours or yjs's.
#[derive(Clone, Debug)]
enum Out {
    Bytes(Vec<u8>),
    Meta {
        from: Vec<(u64, u64)>,
        to: Vec<(u64, u64)>,
    },
    /// A fresh `Y.Doc` after applying an update; `update` is what was applied (ours only).
    Doc {
        state: String,
        json: String,
        pending: bool,
        update: Option<Vec<u8>>,
    },
    /// Our function returned an error or panicked; yjs's threw.
    Err(String),
}

/// Doc contents compared as yjs compares values: `0 === -0`. yjs keeps both in the state
/// (the states are compared byte for byte), but which one a text's delta reports for a
/// format of equal values depends on how its items happen to be split in memory.
fn same_json(a: &str, b: &str) -> bool {
    a == b || a.replace(r#"{"$number":"-0"}"#, "0") == b.replace(r#"{"$number":"-0"}"#, "0")
}

/// A V1 state (hex) compacted, to compare states whose pending structs were joined.
fn compacted_hex(state: &str) -> Option<Vec<u8>> {
    let bytes = hex::decode(state).ok()?;
    yjs::compact_updates_v1(&[&bytes]).ok()
}

impl PartialEq for Out {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Out::Bytes(a), Out::Bytes(b)) => a == b,
            (Out::Meta { from: f1, to: t1 }, Out::Meta { from: f2, to: t2 }) => {
                f1 == f2 && t1 == t2
            }
            // The same doc: the same state and contents. `pending` follows from the state.
            // A doc with structs it cannot integrate yet keeps them as the update they came
            // in, appended to its state as they are: a compacted update leaves them joined,
            // so there the states are compared once both are compacted.
            (
                Out::Doc {
                    state: s1,
                    json: j1,
                    pending: p1,
                    ..
                },
                Out::Doc {
                    state: s2,
                    json: j2,
                    pending: p2,
                    ..
                },
            ) => {
                same_json(j1, j2)
                    && p1 == p2
                    && (s1 == s2 || (*p1 && compacted_hex(s1) == compacted_hex(s2)))
            }
            _ => false,
        }
    }
}

impl fmt::Display for Out {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Out::Bytes(b) => write!(f, "{} ({} bytes)", hex::encode(b), b.len()),
            Out::Meta { from, to } => write!(f, "from {from:?} to {to:?}"),
            Out::Doc {
                state,
                json,
                pending,
                update,
            } => {
                if let Some(u) = update {
                    write!(f, "compacted update {}\n      ", hex::encode(u))?;
                }
                write!(
                    f,
                    "doc state {state}\n      doc json {json}\n      pending {pending}"
                )
            }
            Out::Err(e) => write!(f, "error: {e}"),
        }
    }
}

impl Out {
    /// yjs's result as the oracle wrote it; `None` when yjs threw.
    fn from_case(func: Func, v: &Value) -> Option<Out> {
        if v.get("error").is_some() {
            return None;
        }
        Some(match func {
            Func::MetaV1 | Func::MetaV2 => {
                let pairs = |v: &Value| -> Vec<(u64, u64)> {
                    v.as_array()
                        .expect("meta pairs")
                        .iter()
                        .map(|p| {
                            (
                                p[0].as_u64().expect("client"),
                                p[1].as_u64().expect("clock"),
                            )
                        })
                        .collect()
                };
                Out::Meta {
                    from: pairs(&v["from"]),
                    to: pairs(&v["to"]),
                }
            }
            Func::CompactV1 | Func::CompactV2 => Out::Doc {
                state: v["state"].as_str().expect("state").to_owned(),
                json: v["json"].as_str().expect("json").to_owned(),
                pending: v["pending"].as_bool().expect("pending"),
                update: None,
            },
            _ => Out::Bytes(hex::decode(v.as_str().expect("hex result")).expect("hex")),
        })
    }
}

/// Runs `f`, turning a panic into an `Out::Err` so one bad case reports instead of aborting.
fn guarded<T, E: fmt::Debug>(f: impl FnOnce() -> Result<T, E>) -> Result<T, String> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{e:?}")),
        Err(panic) => Err(format!(
            "panicked: {}",
            panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)")
        )),
    }
}

/// The single update `func` runs on: the raw one, or yjs's merge of the list (the known one,
/// else asked of yjs). `None` when yjs cannot merge them.
fn subject_update(func: Func, input: &Input, yjs: &mut Yjs) -> Option<Vec<u8>> {
    match &input.subject {
        Subject::Raw(u) => Some(u.clone()),
        Subject::MergeOf(_) if input.merged.is_some() => input.merged.clone(),
        Subject::MergeOf(list) => {
            let merge = if func.v2() {
                Func::MergeV2
            } else {
                Func::MergeV1
            };
            match yjs.call(merge, &list_args(list))? {
                Out::Bytes(b) => Some(b),
                _ => None,
            }
        }
        Subject::Updates(_) => None,
    }
}

fn list_args(list: &[Vec<u8>]) -> Vec<Value> {
    vec![Value::Array(
        list.iter().map(|u| Value::String(hex::encode(u))).collect(),
    )]
}

/// Our result for `func` on `input`. Our compactions are applied by yjs, unless they are
/// yjs's merge byte for byte: then the doc is `expected` (yjs's doc from that merge).
fn ours(func: Func, input: &Input, yjs: &mut Yjs, expected: Option<&Out>) -> Out {
    let single = match &input.subject {
        Subject::Updates(list) => {
            let refs: Vec<&[u8]> = list.iter().map(Vec::as_slice).collect();
            let bytes = guarded(|| match func {
                Func::MergeV1 => yjs::merge_updates_v1(&refs),
                Func::MergeV2 => yjs::merge_updates_v2(&refs),
                Func::CompactV1 => yjs::compact_updates_v1(&refs),
                Func::CompactV2 => yjs::compact_updates_v2(&refs),
                _ => unreachable!("only list functions take Subject::Updates"),
            });
            return match (bytes, func) {
                (Err(e), _) => Out::Err(e),
                (Ok(b), Func::MergeV1 | Func::MergeV2) => Out::Bytes(b),
                (Ok(b), _) if input.merged.as_ref() == Some(&b) && expected.is_some() => {
                    match expected.cloned() {
                        Some(Out::Doc {
                            state,
                            json,
                            pending,
                            ..
                        }) => Out::Doc {
                            state,
                            json,
                            pending,
                            update: Some(b),
                        },
                        other => other.expect("checked is_some"),
                    }
                }
                (Ok(b), _) => match yjs.call(func, &[Value::String(hex::encode(&b))]) {
                    Some(Out::Doc {
                        state,
                        json,
                        pending,
                        ..
                    }) => Out::Doc {
                        state,
                        json,
                        pending,
                        update: Some(b),
                    },
                    Some(other) => other,
                    None => Out::Err(format!(
                        "yjs could not apply our compacted update {}",
                        hex::encode(&b)
                    )),
                },
            };
        }
        _ => match subject_update(func, input, yjs) {
            Some(u) => u,
            None => return Out::Err("yjs could not merge the inputs".to_owned()),
        },
    };
    ours_on(func, &single, &input.state_vector)
}

fn ours_on(func: Func, update: &[u8], sv: &[u8]) -> Out {
    let bytes = |r: Result<Vec<u8>, String>| r.map_or_else(Out::Err, Out::Bytes);
    let meta = |r: Result<yjs::UpdateMeta, String>| {
        r.map_or_else(Out::Err, |m| Out::Meta {
            from: m.from,
            to: m.to,
        })
    };
    match func {
        Func::DiffV1 => bytes(guarded(|| yjs::diff_update_v1(update, sv))),
        Func::DiffV2 => bytes(guarded(|| yjs::diff_update_v2(update, sv))),
        Func::SvV1 => bytes(guarded(|| yjs::encode_state_vector_from_update_v1(update))),
        Func::SvV2 => bytes(guarded(|| yjs::encode_state_vector_from_update_v2(update))),
        Func::V1ToV2 => bytes(guarded(|| yjs::convert_update_v1_to_v2(update))),
        Func::V2ToV1 => bytes(guarded(|| yjs::convert_update_v2_to_v1(update))),
        Func::MetaV1 => meta(guarded(|| yjs::parse_update_meta_v1(update))),
        Func::MetaV2 => meta(guarded(|| yjs::parse_update_meta_v2(update))),
        _ => unreachable!("list functions are handled by `ours`"),
    }
}

/// yjs's result for `func` on `input`, asked of the serving oracle; `None` when yjs throws.
fn theirs(func: Func, input: &Input, yjs: &mut Yjs) -> Option<Out> {
    let sv = Value::String(hex::encode(&input.state_vector));
    match &input.subject {
        Subject::Updates(list) => match func {
            Func::MergeV1 | Func::MergeV2 => yjs.call(func, &list_args(list)),
            _ => {
                let merge = if func.v2() {
                    Func::MergeV2
                } else {
                    Func::MergeV1
                };
                let Out::Bytes(merged) = yjs.call(merge, &list_args(list))? else {
                    return None;
                };
                yjs.call(func, &[Value::String(hex::encode(merged))])
            }
        },
        _ => {
            let update = Value::String(hex::encode(subject_update(func, input, yjs)?));
            if func.takes_state_vector() {
                yjs.call(func, &[update, sv])
            } else {
                yjs.call(func, &[update])
            }
        }
    }
}

// -------------------------------------------------------------------------------------------
// Shrinking and reporting

/// Smaller inputs that still make us differ from yjs: drop updates one at a time, then
/// state-vector entries, keeping each removal after which the two still disagree. Returns the
/// input, yjs's and our results on it, and how many candidates were tried.
fn shrink(func: Func, input: &Input, yjs: &mut Yjs) -> Option<(Input, Out, Out, usize)> {
    let differs = |candidate: &Input, yjs: &mut Yjs| {
        let expected = theirs(func, candidate, yjs)?;
        let ours = ours(func, candidate, yjs, None);
        (ours != expected).then_some((expected, ours))
    };
    let mut best = input.clone();
    best.merged = None; // recomputed by yjs for every candidate
    let mut found = None;
    let mut tried = 0;
    loop {
        let mut progressed = false;
        let mut i = 0;
        while i < best.len() && tried < SHRINK_BUDGET {
            let mut candidate = best.clone();
            if let Subject::Updates(l) | Subject::MergeOf(l) = &mut candidate.subject {
                l.remove(i);
            }
            tried += 1;
            if let Some(f) = differs(&candidate, yjs) {
                best = candidate;
                found = Some(f);
                progressed = true;
            } else {
                i += 1;
            }
        }
        if func.takes_state_vector() {
            let mut entries = decode_state_vector(&best.state_vector).unwrap_or_default();
            let mut j = 0;
            while j < entries.len() && tried < SHRINK_BUDGET {
                let mut fewer = entries.clone();
                fewer.remove(j);
                let mut candidate = best.clone();
                candidate.state_vector = encode_state_vector(&fewer);
                tried += 1;
                if let Some(f) = differs(&candidate, yjs) {
                    best = candidate;
                    entries = fewer;
                    found = Some(f);
                    progressed = true;
                } else {
                    j += 1;
                }
            }
        }
        if !progressed || tried >= SHRINK_BUDGET {
            break;
        }
    }
    found.map(|(expected, ours)| (best, expected, ours, tried))
}

fn report(
    seed: u64,
    index: u64,
    check: &Check<'_>,
    expected: Out,
    ours: Out,
    yjs: &mut Yjs,
) -> String {
    let func = check.func;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} differs from yjs: case {index} of seed {seed}, field {}",
        func.name(),
        check.origin
    );
    let _ = writeln!(
        s,
        "  reproduce: YJS_ORACLE_SEED={seed} YJS_ORACLE_ONLY={index} cargo test -p teleportal-core \
         --test yjs_oracle\n             (cd tests/js && node yjs-oracle.mjs --seed {seed} --only {index})"
    );
    let _ = writeln!(s, "  as found:");
    describe(&mut s, func, &check.input, &expected, &ours, yjs);
    if let Some((small, small_expected, small_ours, tried)) = shrink(func, &check.input, yjs) {
        let _ = writeln!(s, "  shrunk (after {tried} tries):");
        describe(&mut s, func, &small, &small_expected, &small_ours, yjs);
    }
    s
}

fn describe(s: &mut String, func: Func, input: &Input, expected: &Out, ours: &Out, yjs: &mut Yjs) {
    let format = if func.v2() { "V2" } else { "V1" };
    match &input.subject {
        Subject::Updates(list) => {
            let _ = writeln!(s, "    {} {format} updates:", list.len());
            for u in list {
                let _ = writeln!(s, "      {}", hex::encode(u));
            }
        }
        Subject::MergeOf(list) => {
            let merged = subject_update(func, input, yjs)
                .map_or_else(|| "(yjs could not merge)".to_owned(), hex::encode);
            let _ = writeln!(s, "    update ({format}) {merged}");
            let _ = writeln!(
                s,
                "      which is yjs's merge of {} {format} updates:",
                list.len()
            );
            for u in list {
                let _ = writeln!(s, "      {}", hex::encode(u));
            }
        }
        Subject::Raw(u) => {
            let _ = writeln!(s, "    update ({format}) {}", hex::encode(u));
        }
    }
    if func.takes_state_vector() {
        let _ = writeln!(s, "    state vector {}", hex::encode(&input.state_vector));
    }
    let _ = writeln!(s, "    yjs:  {expected}");
    let _ = writeln!(s, "    ours: {ours}");
}

/// A V1 state vector's (client, clock) entries; `None` when the bytes are not one.
fn decode_state_vector(mut b: &[u8]) -> Option<Vec<(u64, u64)>> {
    fn var_uint(b: &mut &[u8]) -> Option<u64> {
        let mut n = 0_u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = b.split_first()?;
            *b = rest;
            n |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Some(n);
            }
        }
        None
    }
    let len = var_uint(&mut b)?;
    let mut out = Vec::new();
    for _ in 0..len {
        out.push((var_uint(&mut b)?, var_uint(&mut b)?));
    }
    b.is_empty().then_some(out)
}

fn encode_state_vector(entries: &[(u64, u64)]) -> Vec<u8> {
    fn var_uint(out: &mut Vec<u8>, mut n: u64) {
        while n >= 0x80 {
            out.push(u8::try_from(n & 0x7f).expect("7 bits") | 0x80);
            n >>= 7;
        }
        out.push(u8::try_from(n).expect("below 0x80"));
    }
    let mut out = Vec::new();
    var_uint(
        &mut out,
        u64::try_from(entries.len()).expect("usize fits u64"),
    );
    for &(client, clock) in entries {
        var_uint(&mut out, client);
        var_uint(&mut out, clock);
    }
    out
}

// -------------------------------------------------------------------------------------------
// The node processes

/// `node yjs-oracle.mjs --cases N --seed S --skip K`, streaming one case a line.
struct Generator {
    child: Child,
    lines: std::io::Lines<BufReader<ChildStdout>>,
    stderr: Option<JoinHandle<String>>,
}

impl Generator {
    fn spawn(seed: u64, skip: u64, cases: u64) -> Generator {
        let mut child = Command::new("node")
            .current_dir(js_dir())
            .args(["yjs-oracle.mjs", "--cases", &cases.to_string()])
            .args(["--seed", &seed.to_string(), "--skip", &skip.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn node yjs-oracle.mjs");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        Generator {
            child,
            lines,
            stderr: Some(stderr),
        }
    }

    fn next_case(&mut self) -> Option<Value> {
        let line = self.lines.next()?.expect("read a case line");
        Some(
            serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("case line is not JSON ({e}): {line}")),
        )
    }

    /// Waits for the generator; its report (how long generation took) or a panic with its
    /// stderr when it failed or stopped short.
    fn finish(mut self, seen: u64, cases: u64) -> String {
        let status = self.child.wait().expect("wait for yjs-oracle.mjs");
        let stderr = self
            .stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        assert!(
            status.success() && seen == cases,
            "yjs-oracle.mjs exited with {status} after {seen} of {cases} cases:\n{stderr}"
        );
        stderr.trim().to_owned()
    }
}

impl Drop for Generator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `node yjs-oracle.mjs --serve`: yjs's functions on demand, for applying our compactions
/// and for shrinking.
struct Yjs {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
}

impl Yjs {
    fn spawn() -> Yjs {
        let mut child = Command::new("node")
            .current_dir(js_dir())
            .args(["yjs-oracle.mjs", "--serve"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn node yjs-oracle.mjs --serve");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        Yjs {
            child,
            stdin,
            stdout,
            next_id: 0,
        }
    }

    /// yjs's `func` (`merge_v1`, `apply_v1`, ...) on `args`; `None` when yjs threw.
    fn call(&mut self, func: Func, args: &[Value]) -> Option<Out> {
        self.next_id += 1;
        let request = json!({ "id": self.next_id, "fn": func.field(), "args": args });
        writeln!(self.stdin, "{request}").expect("write to yjs-oracle.mjs --serve");
        self.stdin.flush().expect("flush to yjs-oracle.mjs --serve");
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .expect("read from yjs-oracle.mjs --serve");
        assert!(!line.is_empty(), "yjs-oracle.mjs --serve exited");
        let reply: Value = serde_json::from_str(&line).expect("a JSON reply");
        assert_eq!(reply["id"], self.next_id, "replies come in order");
        Out::from_case(func, &reply["result"])
    }
}

impl Drop for Yjs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
