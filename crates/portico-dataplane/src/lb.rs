//! The load-balancer engine: ALB and NLB listeners.

#[derive(Clone, Default)]
pub struct Engine {}
