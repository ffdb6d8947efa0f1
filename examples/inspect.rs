//! Shows Teleportal and y-protocols messages as JSON, and turns such JSON back into bytes.
//!
//! ```text
//! cargo run -q --example inspect -- 594a5301066d792d646f630000000100     # hex arguments
//! echo 594a5301066d792d646f63000003 | cargo run -q --example inspect      # hex on stdin
//! cargo run -q --example inspect -- --binary < frame.bin                   # raw bytes on stdin
//! cargo run -q --example inspect -- --format y 00000100                    # y-protocols
//! cargo run -q --example inspect -- --format array 10594a53…               # MessageArray
//! cargo run -q --example inspect -- --encode '{"type":"doc","document":"d","encrypted":false,"payload":{"type":"sync-done"}}'
//! ```
//!
//! The JSON uses the field names of the shared test vectors (bytes as `{"$bytes": hex}`).
//! Teleportal messages also show their `messageId` (spec §9); a doc update or sync-step-2 whose
//! data is a content envelope shows it decoded under `contentEnvelope`. `--encode` reads the
//! same JSON (extra keys are ignored) and prints the hex. `--format auto` (the default) reads
//! bytes starting with `YJS` as Teleportal and anything else as y-protocols.

use std::io::Read;
use std::process::ExitCode;

use bytes::Bytes;
use serde_json::{Value, json};
use teleportal_core::json::{
    bytes_to_json, frame_from_json, frame_to_json, y_message_from_json, y_message_to_json,
};
use teleportal_core::{
    Body, ContentEnvelope, DocMessage, Frame, MessageId, PubSubFrame, YMessage, message_array,
};

#[derive(Clone, Copy, PartialEq)]
enum Format {
    Auto,
    Teleportal,
    Y,
    Array,
    PubSub,
}

struct Options {
    format: Format,
    binary: bool,
    encode: bool,
    inputs: Vec<String>,
}

const USAGE: &str = "usage: inspect [--format auto|teleportal|y|array|pubsub] [--binary] [--encode] [HEX_OR_JSON...]
  Decodes hex (arguments, or stdin when none; --binary reads raw bytes from stdin) and prints JSON.
  --encode reads JSON messages instead and prints their hex.";

fn parse_args() -> Result<Options, String> {
    let mut opts = Options {
        format: Format::Auto,
        binary: false,
        encode: false,
        inputs: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--format" => {
                opts.format = match args.next().as_deref() {
                    Some("auto") => Format::Auto,
                    Some("teleportal") => Format::Teleportal,
                    Some("y") | Some("y-protocols") => Format::Y,
                    Some("array") => Format::Array,
                    Some("pubsub") => Format::PubSub,
                    other => return Err(format!("unknown format {other:?}")),
                }
            }
            "--binary" => opts.binary = true,
            "--encode" => opts.encode = true,
            "-h" | "--help" => return Err(String::new()),
            _ => opts.inputs.push(arg),
        }
    }
    Ok(opts)
}

/// Adds what a reader wants beside the vector fields: the id and a decoded content envelope.
fn annotate(frame: &Frame, bytes: &[u8]) -> Value {
    let mut value = frame_to_json(frame);
    if let (Frame::Message(m), Value::Object(map)) = (frame, &mut value) {
        map.insert("messageId".into(), MessageId::of(bytes).to_string().into());
        if let Body::Doc(DocMessage::Update(u) | DocMessage::SyncStep2(u)) = &m.body
            && let Ok(env) = ContentEnvelope::decode(u.data.clone())
        {
            map.insert(
                    "contentEnvelope".into(),
                    json!({
                        "structureUpdate": bytes_to_json(&env.structure_update),
                        "encryptedSidecars": env.sidecars.iter().map(|s| bytes_to_json(s)).collect::<Vec<_>>(),
                        "hasCompaction": env.compaction.is_some(),
                    }),
                );
        }
    }
    value
}

fn decode(bytes: Bytes, format: Format) -> Result<Value, String> {
    let format = match format {
        Format::Auto if bytes.starts_with(b"YJS") => Format::Teleportal,
        Format::Auto => Format::Y,
        f => f,
    };
    let err = |e: teleportal_core::DecodeError| e.to_string();
    Ok(match format {
        Format::Teleportal => annotate(&Frame::decode(bytes.clone()).map_err(err)?, &bytes),
        Format::Y => y_message_to_json(&YMessage::decode(bytes).map_err(err)?),
        Format::Array => Value::Array(
            message_array::decode(bytes)
                .map_err(err)?
                .into_iter()
                .map(|m| {
                    let encoded = m.to_bytes();
                    annotate(&Frame::Message(m), &encoded)
                })
                .collect(),
        ),
        Format::PubSub => {
            let frame = PubSubFrame::decode(bytes).map_err(err)?;
            let message = Frame::decode(frame.message.clone())
                .map(|f| annotate(&f, &frame.message))
                .unwrap_or_else(|e| json!({"undecodable": e.to_string()}));
            json!({"sourceId": frame.source_id, "message": bytes_to_json(&frame.message), "decoded": message})
        }
        Format::Auto => unreachable!("resolved above"),
    })
}

fn encode(text: &str, format: Format) -> Result<String, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("bad JSON: {e}"))?;
    let bytes = if format == Format::Y || value.get("messageType").is_some() {
        y_message_from_json(&value)
            .map_err(|e| e.to_string())?
            .to_bytes()
    } else if let Value::Array(items) = &value {
        let messages = items
            .iter()
            .map(|v| teleportal_core::json::message_from_json(v).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        message_array::encode(&messages)
    } else {
        frame_from_json(&value)
            .map_err(|e| e.to_string())?
            .to_bytes()
    };
    Ok(hex::encode(bytes))
}

fn run(opts: &Options) -> Result<(), String> {
    let mut inputs = opts.inputs.clone();
    let mut stdin_bytes = None;
    if inputs.is_empty() {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| format!("reading stdin: {e}"))?;
        if opts.binary {
            stdin_bytes = Some(Bytes::from(buf));
        } else if opts.encode {
            inputs.push(String::from_utf8(buf).map_err(|_| "stdin is not UTF-8")?);
        } else {
            let text = String::from_utf8(buf).map_err(|_| "stdin is not hex; use --binary")?;
            inputs.extend(text.split_whitespace().map(str::to_owned));
        }
    }
    if let Some(bytes) = stdin_bytes {
        let value = decode(bytes, opts.format)?;
        println!(
            "{}",
            serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?
        );
        return Ok(());
    }
    for input in &inputs {
        if opts.encode {
            println!("{}", encode(input, opts.format)?);
        } else {
            let bytes = hex::decode(input.trim()).map_err(|e| format!("bad hex {input:?}: {e}"))?;
            let value = decode(Bytes::from(bytes), opts.format)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?
            );
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("{e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
