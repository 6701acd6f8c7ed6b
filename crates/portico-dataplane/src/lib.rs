//! Portico's data plane: the engines that carry real traffic. The HTTP API engine routes
//! requests to integrations; the load-balancer engine accepts connections on each listener and
//! forwards to healthy targets. Each engine serves an immutable snapshot that the control plane
//! publishes (`ArcSwap`), so a request never waits on the control plane or the store.
//!
//! Architecture Invariant: this crate knows nothing of AWS APIs, the store or the control
//! plane. It is told what to serve (snapshots) and where VPC addresses live (the address book).
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod addr;
pub mod body;
pub mod h1server;
pub mod http_api;
pub mod lb;
mod rng;
mod text;
pub mod workers;

/// The hash map of the data plane's per-request look-ups (API ids, stage names, listener and
/// target-group ARNs): foldhash instead of std's SipHash, which cost 2-3% of a hop's
/// instructions on ARN-length keys. Keys come from the control plane, not from clients.
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// Every engine, shared by the control plane (which publishes) and the servers (which serve).
#[derive(Clone, Default)]
pub struct Dataplane {
    pub http_api: http_api::Engine,
    pub lb: lb::Engine,
    pub addresses: addr::AddressBook,
}
