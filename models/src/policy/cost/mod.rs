//! What enforcing NetworkPolicy costs on a connection's first packet: one
//! trait, one file per enforcing implementation, and a contract every
//! model passes (`contract.rs`).
//!
//! Only a connection's first packet pays (a new UDP flow's first datagram
//! too): everything after it, replies included, matches the conntrack
//! entry the first packet created (Calico's `-m conntrack --ctstate
//! RELATED,ESTABLISHED -j ACCEPT` ahead of its policy chains; Cilium's
//! connection tracker ahead of its policy map). A check runs on the source
//! pod's node (egress) and on the destination pod's node (ingress), each
//! charged to that node's CPU. When a scenario has no policy at all,
//! nothing is checked and nothing is charged.

mod ebpf;
mod iptables;

#[cfg(test)]
mod contract;

pub use ebpf::EbpfPolicyParams;
pub use iptables::IptablesPolicyParams;

use super::Verdict;

/// The most work one check may cost [ns]: 100 ms (emu's limit: a rule
/// walk that long is not a cluster that works; the first-packet work of a
/// node is kept in 32 bits of nanoseconds).
pub const MAX_CHECK_NS: u64 = 100_000_000;

/// An enforcing implementation's cost model.
pub trait PolicyModel {
    /// The work [ns] of one check that reached `verdict` (one direction,
    /// on one node).
    fn check_ns(&self, verdict: &Verdict) -> u64;
    /// Its name in output files and errors.
    fn name(&self) -> &'static str;
}

/// The enforcing implementation a scenario uses.
#[derive(Clone, Debug, PartialEq)]
pub enum Enforcer {
    /// Calico-style iptables chains per pod.
    Iptables(IptablesPolicyParams),
    /// Cilium-style eBPF policy maps.
    Ebpf(EbpfPolicyParams),
}

impl Default for Enforcer {
    fn default() -> Self {
        Enforcer::Iptables(IptablesPolicyParams::default())
    }
}

impl PolicyModel for Enforcer {
    /// The model's work, capped at [`MAX_CHECK_NS`].
    #[inline]
    fn check_ns(&self, verdict: &Verdict) -> u64 {
        match self {
            Enforcer::Iptables(p) => p.check_ns(verdict),
            Enforcer::Ebpf(p) => p.check_ns(verdict),
        }
        .min(MAX_CHECK_NS)
    }
    fn name(&self) -> &'static str {
        match self {
            Enforcer::Iptables(p) => p.name(),
            Enforcer::Ebpf(p) => p.name(),
        }
    }
}
