//! `teleportal token`: mints a JWT that `teleportal serve` with the same key accepts.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use teleportal_auth::{DocumentAccess, Permission, TokenConfig};

use crate::jwt::JwtArgs;
use crate::{Failure, units};

const AFTER_HELP: &str = "\
Examples:
  teleportal token --jwt-secret \"$SECRET\" --user alice --allow 'notes/*=read,write'
      Alice may read and write every document whose name starts with notes/.
  teleportal token --user bob --room acme --allow '*=read' --allow '!*/private=' --lifetime 8h
      (secret from TELEPORTAL_JWT_SECRET) Bob may read every document of room acme but the
      private ones, for eight hours.
  teleportal token --jwt-public-key ec.pub.pem --jwt-private-key ec.pem --user ci --allow '*=admin'
      An ES256 token (the algorithm is read off the key).

The token goes to stdout; clients pass it as ?token=. Permissions: read, write, comment, \
suggest, admin (admin implies the others). A pattern's * matches any run of characters; a \
pattern starting with ! excludes what it matches, whatever else allows it.";

/// `teleportal token [OPTIONS] --user <USER> --allow <PATTERN=PERMISSIONS>...`
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct TokenArgs {
    /// Who the token is for (its `userId`).
    #[arg(long, value_name = "USER")]
    user: String,
    /// The room (tenant) the token belongs to: its documents are kept apart from every other
    /// room's, whatever their names.
    #[arg(long, default_value = "", value_name = "ROOM")]
    room: String,
    /// Documents and what the token may do on them, as PATTERN=PERMISSIONS (comma-separated);
    /// repeat for more. `*=admin` grants everything.
    #[arg(long = "allow", value_name = "PATTERN=PERMISSIONS", value_parser = access, required = true)]
    allow: Vec<DocumentAccess>,
    /// How long the token stays valid.
    #[arg(long, default_value = "1h", value_parser = units::duration, value_name = "DURATION")]
    lifetime: Duration,
    #[command(flatten)]
    jwt: JwtArgs,
    /// PEM private key signing RS256, ES256 or EdDSA tokens; needs --jwt-public-key, which
    /// checks the pair.
    #[arg(
        long,
        env = "TELEPORTAL_JWT_PRIVATE_KEY",
        value_name = "FILE",
        requires = "jwt_public_key",
        help_heading = "Tokens (JWT)"
    )]
    jwt_private_key: Option<PathBuf>,
}

/// Reads `PATTERN=read,write`.
fn access(text: &str) -> Result<DocumentAccess, String> {
    let (pattern, permissions) = text
        .rsplit_once('=')
        .ok_or_else(|| format!("{text:?}: expected PATTERN=PERMISSIONS, e.g. 'notes/*=read'"))?;
    if pattern.is_empty() {
        return Err(format!(
            "{text:?}: the pattern is empty (use * for every document)"
        ));
    }
    let permissions = permissions
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            Permission::from_name(p).ok_or_else(|| {
                format!("{text:?}: unknown permission {p:?} (read, write, comment, suggest, admin)")
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if permissions.is_empty() && !pattern.starts_with('!') {
        return Err(format!(
            "{text:?} grants nothing: list permissions, or start the pattern with ! to exclude"
        ));
    }
    Ok(DocumentAccess::new(pattern, &permissions))
}

/// Runs `teleportal token`.
pub(crate) fn run(args: &TokenArgs) -> Result<(), Failure> {
    let config = signer(args)?.with_lifetime(args.lifetime.as_secs());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| Failure::run("the system clock is before 1970"))?
        .as_secs();
    let claims = config.claims(&args.user, &args.room, Some(args.allow.clone()), now);
    let token = config.mint(&claims).map_err(Failure::usage)?;
    // A mismatched key pair mints tokens the server would refuse: say so now.
    config.verify(&token, now).map_err(|e| {
        Failure::usage(format!(
            "the minted token does not verify with --jwt-public-key ({e}): are the two keys a pair?"
        ))
    })?;
    println!("{token}");
    Ok(())
}

fn signer(args: &TokenArgs) -> Result<TokenConfig, Failure> {
    let Some(config) = args.jwt.config(Duration::ZERO)? else {
        return Err(Failure::usage(
            "no key: give --jwt-secret (or TELEPORTAL_JWT_SECRET), or --jwt-public-key with \
             --jwt-private-key",
        ));
    };
    match &args.jwt_private_key {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| {
                Failure::usage(format!("--jwt-private-key {}: {e}", path.display()))
            })?;
            config
                .with_signing_key(pem)
                .map_err(|e| Failure::usage(format!("--jwt-private-key {}: {e}", path.display())))
        }
        None if args.jwt.jwt_public_key.is_some() => Err(Failure::usage(
            "--jwt-public-key only verifies: give --jwt-private-key to sign",
        )),
        None => Ok(config),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_reads_patterns_and_permissions() {
        let entry = access("notes/*=read,write").unwrap();
        assert_eq!(entry.pattern, "notes/*");
        assert_eq!(entry.permissions, ["read", "write"]);
        // The last `=` splits, so a pattern may hold one.
        assert_eq!(access("a=b=admin").unwrap().pattern, "a=b");
        assert_eq!(
            access("!secret=").unwrap().permissions,
            Vec::<String>::new()
        );
        assert!(access("notes").unwrap_err().contains("PATTERN=PERMISSIONS"));
        assert!(
            access("notes=fly")
                .unwrap_err()
                .contains("unknown permission")
        );
        assert!(access("notes=").unwrap_err().contains("grants nothing"));
        assert!(access("=read").unwrap_err().contains("empty"));
    }
}
