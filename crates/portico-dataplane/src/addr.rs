//! HOT PATH. The address book: where a VPC private address lives on this machine. Tasks, load-balancer
//! nodes and VPC-link ENIs get private IPs from their subnets (the control plane allocates them);
//! the process behind an address listens on loopback. The engines resolve (private IP, port) to
//! a loopback socket address here. Addresses in 127.0.0.0/8 resolve to themselves.

use parking_lot::RwLock;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

#[derive(Clone, Default)]
pub struct AddressBook {
    inner: Arc<RwLock<HashMap<(IpAddr, u16), SocketAddr>>>,
}

impl AddressBook {
    /// Records that `private:port` is served at `local`.
    pub fn bind(&self, private: IpAddr, port: u16, local: SocketAddr) {
        self.inner.write().insert((private, port), local);
    }

    pub fn unbind(&self, private: IpAddr, port: u16) {
        self.inner.write().remove(&(private, port));
    }

    /// Where to connect for `private:port`; `None` when nothing is there.
    pub fn resolve(&self, private: IpAddr, port: u16) -> Option<SocketAddr> {
        if private.is_loopback() {
            return Some(SocketAddr::new(private, port));
        }
        self.inner.read().get(&(private, port)).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_bound_and_loopback() {
        let b = AddressBook::default();
        let p: IpAddr = "10.0.2.15".parse().unwrap();
        let l: SocketAddr = "127.0.0.1:34567".parse().unwrap();
        assert_eq!(b.resolve(p, 80), None);
        b.bind(p, 80, l);
        assert_eq!(b.resolve(p, 80), Some(l));
        b.unbind(p, 80);
        assert_eq!(b.resolve(p, 80), None);
        assert_eq!(
            b.resolve("127.0.0.2".parse().unwrap(), 9),
            Some("127.0.0.2:9".parse().unwrap())
        );
    }
}
