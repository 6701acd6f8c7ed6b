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
pub mod http_api;
pub mod lb;
pub mod workers;

/// Every engine, shared by the control plane (which publishes) and the servers (which serve).
#[derive(Clone, Default)]
pub struct Dataplane {
    pub http_api: http_api::Engine,
    pub lb: lb::Engine,
    pub addresses: addr::AddressBook,
}
