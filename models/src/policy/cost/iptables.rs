//! Calico-style enforcement in iptables (Calico's iptables data plane).
//!
//! Calico renders every pod's policy into chains of the filter table: a
//! dispatch chain on the pod's interface jumps to the pod's chain
//! (`cali-tw-<iface>` to the pod, `cali-fw-<iface>` from it), which jumps
//! to one chain per policy selecting the pod in order (`cali-pi-`/`cali-po-`)
//! and ends in a drop when the pod is isolated. A policy's chain holds one
//! rule per peer and protocol of each of its rules (selectors and ipBlocks
//! are ipset matches; a rule's ports of one protocol share one multiport
//! match). The first rule that matches accepts: a check passes the
//! dispatch rules, then every rule up to the accepting one, or every rule
//! and the final drop. `Verdict::rules` counts those rules.
//!
//! | parameter | default | source |
//! |---|---|---|
//! | `rule_ns` | 20 ns per rule passed | published-figures.md: "roughly 18-24 ns per rule passed" (the same netfilter rule walk kube-proxy's iptables mode is charged) |
//! | `dispatch_ns` | 200 ns per check | estimate, not validated: about ten rules of Calico's interface dispatch tree and the pod chain's conntrack and mark rules, at `rule_ns` |
//! | `set_ns` | 40 ns per rule passed | estimate, not validated: one ipset hash lookup (`hash:net`/`hash:ip`) per selector or ipBlock match |

use super::PolicyModel;
use crate::policy::Verdict;

/// Costs of Calico-style iptables enforcement.
#[derive(Clone, Debug, PartialEq)]
pub struct IptablesPolicyParams {
    /// One rule passed [ns].
    pub rule_ns: u64,
    /// The dispatch chains and the pod chain's fixed rules [ns].
    pub dispatch_ns: u64,
    /// The ipset lookup of a rule passed [ns].
    pub set_ns: u64,
}

impl Default for IptablesPolicyParams {
    fn default() -> Self {
        IptablesPolicyParams { rule_ns: 20, dispatch_ns: 200, set_ns: 40 }
    }
}

impl PolicyModel for IptablesPolicyParams {
    #[inline]
    fn check_ns(&self, v: &Verdict) -> u64 {
        self.dispatch_ns + v.rules as u64 * (self.rule_ns + self.set_ns)
    }
    fn name(&self) -> &'static str {
        "iptables"
    }
}
