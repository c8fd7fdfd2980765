//! kube-proxy: how a node turns a Service address into an endpoint, and
//! what that costs the first packet of a connection.
//!
//! - [`iptables`]: KUBE-SERVICES matched rule by rule (cost O(Services)),
//!   KUBE-SVC probability chains (uniform choice), KUBE-NODEPORTS.

pub mod iptables;
