//! `teleportal inspect`: Teleportal and y-protocols messages as JSON, and such JSON back into
//! bytes.

use std::io::Read;

use bytes::Bytes;
use clap::{Args, ValueEnum};
use serde_json::{Value, json};
use teleportal_core::json::{
    bytes_to_json, frame_from_json, frame_to_json, message_from_json, y_message_from_json,
    y_message_to_json,
};
use teleportal_core::{
    Body, ContentEnvelope, DocMessage, Frame, MessageId, PubSubFrame, YMessage, message_array,
};

use crate::Failure;

const AFTER_HELP: &str = "\
The JSON uses the field names of the reference's test vectors (bytes as {\"$bytes\": hex}). \
Teleportal messages also show their messageId; an update or sync-step-2 whose data is a \
content envelope shows it decoded under contentEnvelope.

Examples:
  teleportal inspect 594a5301066d792d646f630000000100       hex arguments
  echo 594a5301066d792d646f63000003 | teleportal inspect     hex on stdin
  teleportal inspect --binary < frame.bin                    raw bytes on stdin
  teleportal inspect --format y 00000100                     a y-protocols message
  teleportal inspect --encode '{\"type\":\"doc\",\"document\":\"d\",\"encrypted\":false,\"payload\":{\"type\":\"sync-done\"}}'";

/// `teleportal inspect [OPTIONS] [INPUT]...`
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct InspectArgs {
    /// What the bytes are; `auto` reads bytes starting with `YJS` as Teleportal and anything
    /// else as y-protocols.
    #[arg(long, value_enum, default_value_t = Format::Auto)]
    format: Format,
    /// Read one message as raw bytes from stdin instead of hex.
    #[arg(long, conflicts_with_all = ["encode", "inputs"])]
    binary: bool,
    /// Read JSON messages and print their bytes as hex (extra keys are ignored).
    #[arg(long)]
    encode: bool,
    /// Hex messages (JSON with `--encode`); read from stdin when none is given.
    #[arg(value_name = "INPUT")]
    inputs: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Teleportal when it starts with `YJS`, y-protocols otherwise.
    Auto,
    /// A Teleportal message (spec §3).
    Teleportal,
    /// A y-protocols message, as y-websocket sends it.
    #[value(alias = "y-protocols")]
    Y,
    /// A MessageArray (the HTTP transports' body).
    Array,
    /// A pub/sub frame between nodes.
    Pubsub,
}

/// Adds what a reader wants beside the vector fields: the id and a decoded content envelope.
fn annotate(frame: &Frame, bytes: &[u8]) -> Value {
    let mut value = frame_to_json(frame);
    if let (Frame::Message(m), Value::Object(map)) = (frame, &mut value) {
        map.insert("messageId".into(), MessageId::of(bytes).to_string().into());
        if let Body::Doc(DocMessage::Update(u) | DocMessage::SyncStep2(u)) = &m.body
            && let Ok(env) = ContentEnvelope::decode(u.data.clone())
        {
            let sidecars: Vec<Value> = env.sidecars.iter().map(|s| bytes_to_json(s)).collect();
            map.insert(
                "contentEnvelope".into(),
                json!({
                    "structureUpdate": bytes_to_json(&env.structure_update),
                    "encryptedSidecars": sidecars,
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
        Format::Teleportal | Format::Auto => {
            annotate(&Frame::decode(bytes.clone()).map_err(err)?, &bytes)
        }
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
        Format::Pubsub => {
            let frame = PubSubFrame::decode(bytes).map_err(err)?;
            let message = Frame::decode(frame.message.clone())
                .map(|f| annotate(&f, &frame.message))
                .unwrap_or_else(|e| json!({"undecodable": e.to_string()}));
            json!({
                "sourceId": frame.source_id,
                "message": bytes_to_json(&frame.message),
                "decoded": message,
            })
        }
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
            .map(|v| message_from_json(v).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        message_array::encode(&messages)
    } else {
        frame_from_json(&value)
            .map_err(|e| e.to_string())?
            .to_bytes()
    };
    Ok(hex::encode(bytes))
}

fn print(value: &Value) {
    // Serializing a `Value` cannot fail.
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

/// Runs `teleportal inspect`. Bad input (hex, JSON, a message that does not decode) is a
/// usage failure: it is the input that is wrong.
pub(crate) fn run(args: &InspectArgs) -> Result<(), Failure> {
    let mut inputs = args.inputs.clone();
    if inputs.is_empty() {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| Failure::run(format!("reading stdin: {e}")))?;
        if args.binary {
            let value = decode(Bytes::from(buf), args.format).map_err(Failure::usage)?;
            print(&value);
            return Ok(());
        }
        let text = String::from_utf8(buf).map_err(|_| {
            Failure::usage("stdin is not text; use --binary for raw bytes".to_owned())
        })?;
        if args.encode {
            inputs.push(text);
        } else {
            inputs.extend(text.split_whitespace().map(str::to_owned));
        }
    }
    for input in &inputs {
        if args.encode {
            println!("{}", encode(input, args.format).map_err(Failure::usage)?);
        } else {
            let bytes = hex::decode(input.trim())
                .map_err(|e| Failure::usage(format!("bad hex {input:?}: {e}")))?;
            print(&decode(Bytes::from(bytes), args.format).map_err(Failure::usage)?);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trips_through_encode_and_decode() {
        let hex_in = "594a5301066d792d646f63000003";
        let value = decode(Bytes::from(hex::decode(hex_in).unwrap()), Format::Auto).unwrap();
        assert_eq!(value["document"], "my-doc");
        let text = serde_json::to_string(&value).unwrap();
        assert_eq!(encode(&text, Format::Auto).unwrap(), hex_in);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert!(decode(Bytes::from_static(b"YJS\x01"), Format::Auto).is_err());
        assert!(decode(Bytes::from_static(&[0xff; 3]), Format::Pubsub).is_err());
        assert!(encode("{", Format::Auto).is_err());
    }
}
