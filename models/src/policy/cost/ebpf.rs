//! Cilium-style enforcement in eBPF.
//!
//! Cilium computes each endpoint's policy in the agent and writes the
//! result into a per-endpoint BPF hash map keyed by (remote identity,
//! port, protocol, direction): the data path's check is one map lookup
//! (two with the wildcard-port fallback) whatever the number of policies,
//! rules or pods. It runs for a connection's first packet; established
//! traffic matches Cilium's connection tracker first.
//!
//! | parameter | default | source |
//! |---|---|---|
//! | `lookup_ns` | 100 ns per check | estimate, not validated: two BPF hash-map lookups (identity, then policy), of the order of the socket-LB's service lookups (`[proxy.ebpf] connect_ns` charges 1,000 ns for its translation) |

use super::PolicyModel;
use crate::policy::Verdict;

/// Costs of Cilium-style eBPF enforcement.
#[derive(Clone, Debug, PartialEq)]
pub struct EbpfPolicyParams {
    /// One policy-map check [ns].
    pub lookup_ns: u64,
}

impl Default for EbpfPolicyParams {
    fn default() -> Self {
        EbpfPolicyParams { lookup_ns: 100 }
    }
}

impl PolicyModel for EbpfPolicyParams {
    #[inline]
    fn check_ns(&self, _: &Verdict) -> u64 {
        self.lookup_ns
    }
    fn name(&self) -> &'static str {
        "ebpf"
    }
}
