//! What one kube-proxy sync costs, per mode: the time from the start of a
//! sync (the state it reads) to the moment its rules are in the kernel.
//!
//! - **iptables**: kube-proxy writes an iptables-restore input and the
//!   kernel swaps the table. A full sync writes every chain: per Service
//!   port with endpoints [`IPT_LINES_PER_PORT`] lines (its KUBE-SERVICES
//!   rule, the KUBE-SVC chain's declaration and masquerade rule), per
//!   endpoint [`IPT_LINES_PER_ENDPOINT`] (its KUBE-SVC statistic rule, the
//!   KUBE-SEP chain's declaration and its two rules). A partial sync
//!   (KEP-3453) rewrites KUBE-SERVICES in full (one line per port) and only
//!   the chains of changed Service ports.
//! - **nftables**: always partial by design: the changed ports' chains,
//!   map and set elements, after kube-proxy's walk of every Service port.
//! - **IPVS**: every sync walks every virtual server (netlink dumps and
//!   compares), plus the changed real servers.
//! - **eBPF**: one map update per changed endpoint or frontend.
//!
//! The costs per line are in [`SyncParams`] with their sources.

use super::params::SyncParams;
use crate::proxy::Mode;

/// iptables-restore lines per Service port in a full sync.
pub const IPT_LINES_PER_PORT: u64 = 3;
/// iptables-restore lines per endpoint.
pub const IPT_LINES_PER_ENDPOINT: u64 = 4;
/// nftables lines (rules and elements) per Service port.
pub const NFT_LINES_PER_PORT: u64 = 4;
/// nftables lines per endpoint.
pub const NFT_LINES_PER_ENDPOINT: u64 = 3;

/// What a sync reads and rewrites.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Work {
    /// Whether it is a full sync (the first, and one every `syncPeriod`).
    pub full: bool,
    /// Service ports the node programs in all.
    pub ports: u64,
    /// Endpoints in all.
    pub endpoints: u64,
    /// Service ports changed since the last sync.
    pub changed_ports: u64,
    /// Endpoints of the changed ports.
    pub changed_endpoints: u64,
}

/// The duration of a sync of `w` in mode `mode` [ns].
pub fn duration_ns(mode: Mode, p: &SyncParams, w: &Work) -> u64 {
    match mode {
        Mode::Iptables => {
            let lines = if w.full || !p.iptables_partial {
                IPT_LINES_PER_PORT * w.ports + IPT_LINES_PER_ENDPOINT * w.endpoints
            } else {
                w.ports + (IPT_LINES_PER_PORT - 1) * w.changed_ports + IPT_LINES_PER_ENDPOINT * w.changed_endpoints
            };
            p.iptables_base_ns + lines * p.iptables_line_ns
        }
        Mode::Nftables => {
            let (ports, eps) = if w.full { (w.ports, w.endpoints) } else { (w.changed_ports, w.changed_endpoints) };
            p.nft_base_ns
                + w.ports * p.nft_port_ns
                + (NFT_LINES_PER_PORT * ports + NFT_LINES_PER_ENDPOINT * eps) * p.nft_line_ns
        }
        Mode::Ipvs => {
            let eps = if w.full { w.endpoints } else { w.changed_endpoints };
            p.ipvs_base_ns + (w.ports + eps) * p.ipvs_service_ns
        }
        Mode::Ebpf => {
            let entries = if w.full { w.ports + w.endpoints } else { w.changed_ports + w.changed_endpoints };
            p.ebpf_base_ns + entries * p.ebpf_entry_ns
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_iptables_sync_costs_its_lines_at_the_published_rate() {
        // kubernetes#96018: 695,992 lines restored in 12.8 s. A cluster
        // whose full sync writes about that many lines: 10,000 ports of 16
        // endpoints is 30,000 + 640,000 lines.
        let p = SyncParams::default();
        let w = Work { full: true, ports: 10_000, endpoints: 160_000, ..Default::default() };
        let lines = (IPT_LINES_PER_PORT * w.ports + IPT_LINES_PER_ENDPOINT * w.endpoints) as f64;
        let per_line = (duration_ns(Mode::Iptables, &p, &w) - p.iptables_base_ns) as f64 / lines;
        assert!((per_line / (12.8e9 / 695_992.0) - 1.0).abs() < 0.03, "{per_line} ns per line");
    }

    #[test]
    fn a_partial_sync_is_much_cheaper_than_a_full_one_at_scale() {
        let p = SyncParams::default();
        let full = Work { full: true, ports: 10_000, endpoints: 150_000, changed_ports: 1, changed_endpoints: 15 };
        let partial = Work { full: false, ..full };
        let (f, q) = (duration_ns(Mode::Iptables, &p, &full), duration_ns(Mode::Iptables, &p, &partial));
        assert!(f > 10 * q, "full {f} partial {q}");
        let off = SyncParams { iptables_partial: false, ..p.clone() };
        assert_eq!(duration_ns(Mode::Iptables, &off, &partial), f, "without partial syncs every sync is full");
        // nftables: one Service added beside 10,000 takes ~141 ms (PR #126013).
        let one = Work { full: false, ports: 10_000, endpoints: 20_000, changed_ports: 1, changed_endpoints: 2 };
        let nft = duration_ns(Mode::Nftables, &p, &one) as f64;
        assert!((nft / 141e6 - 1.0).abs() < 0.05, "{nft}");
    }
}
