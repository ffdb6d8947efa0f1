//! Rewrites the client ids of a Yjs V1 update, so one history can be replayed as if typed by
//! other clients (the 100k-update run replays the 10k history under fresh ids).

use bytes::{BufMut, Bytes};
use teleportal_core::Any;
use teleportal_core::lib0::{Reader, write_var_bytes, write_var_string, write_var_uint};

type Result<T> = std::result::Result<T, String>;

/// The update with every client id (of structs, origins, parents and the delete set) shifted
/// by `offset`.
pub(crate) fn shift_clients(update: &[u8], offset: u64) -> Result<Bytes> {
    let mut r = Reader::new(Bytes::copy_from_slice(update));
    let mut out = Vec::with_capacity(update.len() + 16);
    let e = |e: teleportal_core::DecodeError| e.to_string();
    let clients = r.read_var_uint("clients").map_err(e)?;
    write_var_uint(&mut out, clients);
    for _ in 0..clients {
        let structs = r.read_var_uint("structs").map_err(e)?;
        write_var_uint(&mut out, structs);
        let client = r.read_var_uint("client").map_err(e)?;
        write_var_uint(&mut out, client + offset);
        copy_uint(&mut r, &mut out)?; // first clock
        for _ in 0..structs {
            copy_struct(&mut r, &mut out, offset)?;
        }
    }
    // Delete set.
    let clients = r.read_var_uint("ds clients").map_err(e)?;
    write_var_uint(&mut out, clients);
    for _ in 0..clients {
        let client = r.read_var_uint("ds client").map_err(e)?;
        write_var_uint(&mut out, client + offset);
        let ranges = r.read_var_uint("ds ranges").map_err(e)?;
        write_var_uint(&mut out, ranges);
        for _ in 0..ranges {
            copy_uint(&mut r, &mut out)?;
            copy_uint(&mut r, &mut out)?;
        }
    }
    if !r.is_empty() {
        return Err("trailing bytes after the delete set".into());
    }
    Ok(Bytes::from(out))
}

fn copy_uint(r: &mut Reader, out: &mut Vec<u8>) -> Result<u64> {
    let v = r.read_var_uint("varUint").map_err(|e| e.to_string())?;
    write_var_uint(out, v);
    Ok(v)
}

fn copy_string(r: &mut Reader, out: &mut Vec<u8>) -> Result<()> {
    let s = r.read_var_string("string").map_err(|e| e.to_string())?;
    write_var_string(out, &s);
    Ok(())
}

fn copy_id(r: &mut Reader, out: &mut Vec<u8>, offset: u64) -> Result<()> {
    let client = r.read_var_uint("id client").map_err(|e| e.to_string())?;
    write_var_uint(out, client + offset);
    copy_uint(r, out).map(drop)
}

fn copy_struct(r: &mut Reader, out: &mut Vec<u8>, offset: u64) -> Result<()> {
    let info = r.read_u8("info").map_err(|e| e.to_string())?;
    out.put_u8(info);
    match info & 0x1f {
        0 | 10 => return copy_uint(r, out).map(drop), // GC, Skip: a length
        _ => {}
    }
    let has_origin = info & 0x80 != 0;
    let has_right_origin = info & 0x40 != 0;
    if has_origin {
        copy_id(r, out, offset)?;
    }
    if has_right_origin {
        copy_id(r, out, offset)?;
    }
    if !has_origin && !has_right_origin {
        if copy_uint(r, out)? == 1 {
            copy_string(r, out)?; // root type name
        } else {
            copy_id(r, out, offset)?; // parent item
        }
        if info & 0x20 != 0 {
            copy_string(r, out)?; // parentSub (map key)
        }
    }
    match info & 0x1f {
        1 => copy_uint(r, out).map(drop), // Deleted
        2 => {
            // JSON: strings
            for _ in 0..copy_uint(r, out)? {
                copy_string(r, out)?;
            }
            Ok(())
        }
        3 => {
            let b = r.read_var_bytes("binary").map_err(|e| e.to_string())?;
            write_var_bytes(out, &b);
            Ok(())
        }
        4 | 5 => copy_string(r, out), // String, Embed
        6 => {
            copy_string(r, out)?;
            copy_string(r, out)
        }
        7 => {
            let type_ref = copy_uint(r, out)?;
            if type_ref == 3 || type_ref == 5 {
                copy_string(r, out)?; // XmlElement / XmlHook name
            }
            Ok(())
        }
        8 => {
            for _ in 0..copy_uint(r, out)? {
                copy_any(r, out)?;
            }
            Ok(())
        }
        9 => {
            copy_string(r, out)?;
            copy_any(r, out)
        }
        other => Err(format!("unknown content ref {other}")),
    }
}

fn copy_any(r: &mut Reader, out: &mut Vec<u8>) -> Result<()> {
    let value = Any::read(r).map_err(|e| e.to_string())?;
    value.encode(out);
    Ok(())
}
