//! `teleportal keygen`: a new encryption-at-rest key, as a line of a key file.

use clap::Args;
use teleportal_storage::encryption::{EncryptionKey, KeyId};

use crate::Failure;

const AFTER_HELP: &str = "\
Examples:
  teleportal keygen --id k1 > keys.txt && chmod 600 keys.txt
      A key file for `teleportal serve --encryption-key-file keys.txt`.
  { teleportal keygen --id k2; cat keys.txt; } > keys.new && mv keys.new keys.txt
      Rotation: the new key first encrypts what is written from the next start on; k1 stays
      to read what it encrypted.";

/// `teleportal keygen [--id ID]`
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct KeygenArgs {
    /// The key's id, stored beside every record it encrypts (1 to 255 bytes).
    #[arg(long, default_value = "k1", value_name = "ID")]
    id: String,
}

/// Prints `ID:HEX` with 32 random bytes from the operating system.
pub(crate) fn run(args: &KeygenArgs) -> Result<(), Failure> {
    let id = KeyId::new(&args.id).map_err(|e| Failure::usage(format!("--id: {e}")))?;
    let key = EncryptionKey::generate(id).map_err(Failure::run)?;
    println!("{}:{}", key.id(), hex::encode(key.as_bytes()));
    Ok(())
}
