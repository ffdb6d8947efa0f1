//! Yjs fixture vectors.

use crate::harness::{Outcome, Vector};

pub fn check_fixture(_v: &Vector) -> Outcome { Err("not implemented yet".into()) }
pub fn check_y_expected(_v: &Vector, _data: &bytes::Bytes) -> Outcome { Err("not implemented yet".into()) }
