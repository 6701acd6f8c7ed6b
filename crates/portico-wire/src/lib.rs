//! AWS wire protocols. Knows protocols, not services: how a request names its service and
//! operation, how input is decoded into one JSON value, how output and errors are encoded, and
//! how SigV4 signatures are parsed and verified. The per-service facts it needs (target
//! prefixes, versions, namespaces) come from `portico_core::Service`.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod detect;
pub mod encode;
pub mod query;
pub mod rest;
pub mod sigv4;
pub mod xml;

pub use detect::{detect, Detected, RawRequest};
pub use encode::{encode_error, encode_success};
