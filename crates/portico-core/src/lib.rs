//! Portico's shared vocabulary: the one client-visible error, ids, ARNs, request context, time,
//! and typed access to operation input. Knows no protocol, no store and does no IO.

pub mod context;
pub mod error;
pub mod ids;
pub mod input;
pub mod service;
pub mod time;

pub use context::RequestContext;
pub use error::{AwsError, AwsResult};
pub use input::Input;
pub use service::{Protocol, Service};
