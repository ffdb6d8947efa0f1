//! Sidecar plaintexts, milestones, attribution and storage formats.

use bytes::Bytes;
use crate::harness::{Outcome, Vector};

pub fn check_sidecar(_v: &Vector) -> Outcome { Err("not implemented yet".into()) }
pub fn check_milestone(_v: &Vector) -> Outcome { Err("not implemented yet".into()) }
pub fn check_attribution(_v: &Vector) -> Outcome { Err("not implemented yet".into()) }
pub fn check_versioned_bytes(_v: &Vector) -> Outcome { Err("not implemented yet".into()) }
pub fn decode_with(_decoder: &str, _bytes: Bytes) -> Option<Result<(), String>> { None }
