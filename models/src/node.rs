//! A node's capacities: its packet-processing CPU, its NIC's transmit
//! queue, and its conntrack table.
//!
//! - **Softirq CPU**: `softirq_cores` servers with one FIFO queue; every
//!   message passing the node costs CPU per packet and per byte (see
//!   [`crate::datapath`]), plus the proxy's first-packet work (iptables
//!   rules, conntrack entry) for a new connection. The backlog is bounded
//!   at `backlog` messages per core (`net.core.netdev_max_backlog`); a
//!   message arriving at a full backlog is dropped.
//! - **NIC**: one transmit queue at the link's bandwidth, bounded at
//!   `txqueuelen` messages; a full queue drops.
//! - A dropped TCP message is sent again after `rto_ns` (Linux's minimum
//!   retransmission timeout); a dropped DNS query after `dns_retry_ns` (the
//!   resolver's timeout). Bounds count messages, not packets: an
//!   approximation that is exact for messages of one packet.
//! - A lost handshake (a SYN, or its SYN-ACK, dropped anywhere: a full
//!   queue, a `Local` policy without endpoint, a full conntrack table) is
//!   retransmitted as Linux retransmits a SYN ([`NodeParams::syn_rto_ns`]):
//!   `TCP_TIMEOUT_INIT` (1 s) for the first `tcp_syn_linear_timeouts`
//!   retransmissions and the next, then doubling (capped at `TCP_RTO_MAX`,
//!   120 s), for `tcp_syn_retries + tcp_syn_linear_timeouts` retransmissions
//!   in all (tcp_write_timeout in net/ipv4/tcp_timer.c); the connect then
//!   fails one more RTO later. With the defaults: retransmissions 1, 2, 3,
//!   4, 5, 7, 11, 19, 35 and 67 s after the first SYN, failure at 131 s.
//! - **Conntrack**: a table of `conntrack_max` entries. A new connection
//!   adds one entry on each node whose netfilter sees it; the entry lives
//!   while the connection is open, then `tcp_time_wait_ns` more (TIME_WAIT);
//!   a UDP flow's entry lives `udp_timeout_ns`. When the table is full the
//!   kernel drops the new flow's packet ("nf_conntrack: table full, dropping
//!   packet"); established flows continue. emu has no non-assured entries
//!   to evict early.
//!
//! | parameter | default | source |
//! |---|---|---|
//! | `softirq_cores` | 4 | assumption: a 4-vCPU node, RSS spreading flows over every core |
//! | `backlog` | 1,000 per core | `net.core.netdev_max_backlog` default |
//! | `txqueuelen` | 1,000 | Linux's default for Ethernet devices |
//! | `conntrack_max` | max(32,768 x cores, 131,072) = 131,072 | kube-proxy's `--conntrack-max-per-core` 32,768 and `--conntrack-min` 131,072 (published-figures.md) |
//! | `tcp_time_wait_ns` | 120 s | `nf_conntrack_tcp_timeout_time_wait` default |
//! | `udp_timeout_ns` | 30 s | `nf_conntrack_udp_timeout` default (kube-proxy leaves it) |
//! | `rto_ns` | 200 ms | Linux `TCP_RTO_MIN` |
//! | `dns_retry_ns` | 5 s | resolv.conf `timeout` default |
//! | `tcp_syn_retries` | 6 | `net.ipv4.tcp_syn_retries` default (Documentation/networking/ip-sysctl.rst) |
//! | `tcp_syn_linear_timeouts` | 4 | `net.ipv4.tcp_syn_linear_timeouts` default since Linux 6.5 (ip-sysctl.rst); 0 gives older kernels' 1, 2, 4 ... s and failure at 127 s |

use std::collections::VecDeque;

use emu_engine::LazyFifo;

/// Linux `TCP_TIMEOUT_INIT`: the RTO of a SYN before any RTT sample (RFC
/// 6298) [ns].
pub const TCP_TIMEOUT_INIT_NS: u64 = 1_000_000_000;

/// Linux `TCP_RTO_MAX` [ns].
pub const TCP_RTO_MAX_NS: u64 = 120_000_000_000;

/// Node capacity parameters; see the module docs for sources.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeParams {
    /// Cores processing packets.
    pub softirq_cores: u32,
    /// Backlog per core [messages].
    pub backlog: u32,
    /// NIC transmit queue [messages].
    pub txqueuelen: u32,
    /// Conntrack table size [entries]; 0: kube-proxy's max(32768 x cores, 131072).
    pub conntrack_max: u32,
    /// TIME_WAIT of a closed TCP connection's entry [ns].
    pub tcp_time_wait_ns: u64,
    /// Lifetime of a UDP flow's entry [ns].
    pub udp_timeout_ns: u64,
    /// Retransmission delay of a dropped TCP message [ns].
    pub rto_ns: u64,
    /// Retry delay of a dropped DNS query [ns].
    pub dns_retry_ns: u64,
    /// SYN retransmissions with exponential backoff (`net.ipv4.tcp_syn_retries`).
    pub tcp_syn_retries: u32,
    /// SYN retransmissions first made at the initial RTO, before the
    /// backoff starts (`net.ipv4.tcp_syn_linear_timeouts`).
    pub tcp_syn_linear_timeouts: u32,
}

impl Default for NodeParams {
    fn default() -> Self {
        NodeParams {
            softirq_cores: 4,
            backlog: 1_000,
            txqueuelen: 1_000,
            conntrack_max: 0,
            tcp_time_wait_ns: 120_000_000_000,
            udp_timeout_ns: 30_000_000_000,
            rto_ns: 200_000_000,
            dns_retry_ns: 5_000_000_000,
            tcp_syn_retries: 6,
            tcp_syn_linear_timeouts: 4,
        }
    }
}

impl NodeParams {
    /// How long a connecting client waits after its SYN (or SYN-ACK) is
    /// lost, `sent` transmissions so far (1 after the first SYN), and
    /// whether it then retransmits (`true`) or gives up (`false`):
    /// `TCP_TIMEOUT_INIT`, doubling after the linear ones, up to
    /// `TCP_RTO_MAX` (tcp_retransmit_timer, tcp_write_timeout).
    pub fn syn_rto_ns(&self, sent: u32) -> (u64, bool) {
        let doublings = sent.saturating_sub(1 + self.tcp_syn_linear_timeouts).min(7);
        let rto = (TCP_TIMEOUT_INIT_NS << doublings).min(TCP_RTO_MAX_NS);
        (rto, sent <= self.tcp_syn_retries + self.tcp_syn_linear_timeouts)
    }

    /// The conntrack table size in effect.
    pub fn conntrack_max(&self) -> u32 {
        if self.conntrack_max > 0 {
            self.conntrack_max
        } else {
            (32_768 * self.softirq_cores.max(1)).max(131_072)
        }
    }
}

/// A node's conntrack table: counts, with expiry queues per timeout class
/// (each class has one timeout, so its expiries arrive in order and the
/// queue stays sorted: O(1) per operation).
#[derive(Clone, Debug)]
pub struct Conntrack {
    max: u32,
    open: u32,
    closing: VecDeque<u64>,
    udp: VecDeque<u64>,
    /// Most entries seen at once.
    pub peak: u32,
    /// New flows dropped because the table was full.
    pub drops: u64,
}

impl Conntrack {
    /// An empty table of `max` entries.
    pub fn new(max: u32) -> Conntrack {
        Conntrack { max, open: 0, closing: VecDeque::new(), udp: VecDeque::new(), peak: 0, drops: 0 }
    }

    fn purge(&mut self, now: u64) {
        while self.closing.front().is_some_and(|&t| t <= now) {
            self.closing.pop_front();
        }
        while self.udp.front().is_some_and(|&t| t <= now) {
            self.udp.pop_front();
        }
    }

    /// Entries at `now`.
    pub fn len(&mut self, now: u64) -> u32 {
        self.purge(now);
        self.open + self.closing.len() as u32 + self.udp.len() as u32
    }

    /// Whether no entry is live at `now`.
    pub fn is_empty(&mut self, now: u64) -> bool {
        self.len(now) == 0
    }

    fn admit(&mut self, now: u64) -> bool {
        let n = self.len(now);
        if n >= self.max {
            self.drops += 1;
            return false;
        }
        self.peak = self.peak.max(n + 1);
        true
    }

    /// A new TCP connection's first packet: `false` if the table is full.
    pub fn open_tcp(&mut self, now: u64) -> bool {
        let ok = self.admit(now);
        self.open += u32::from(ok);
        ok
    }

    /// An open TCP connection closed at `now`: TIME_WAIT starts.
    pub fn close_tcp(&mut self, now: u64, time_wait_ns: u64) {
        assert!(self.open > 0, "closing a connection conntrack never saw");
        self.open -= 1;
        self.closing.push_back(now + time_wait_ns);
    }

    /// A new UDP flow at `now` living `timeout_ns`: `false` if full.
    pub fn open_udp(&mut self, now: u64, timeout_ns: u64) -> bool {
        let ok = self.admit(now);
        if ok {
            self.udp.push_back(now + timeout_ns);
        }
        ok
    }
}

/// A node's run-time resources.
#[derive(Clone, Debug)]
pub struct NodeRt {
    /// Softirq CPU.
    pub cpu: LazyFifo,
    /// NIC transmit queue.
    pub nic: LazyFifo,
    /// Conntrack table.
    pub conntrack: Conntrack,
}

impl NodeRt {
    /// A node's resources under `p`.
    pub fn new(p: &NodeParams) -> NodeRt {
        NodeRt {
            cpu: LazyFifo::new(p.softirq_cores.max(1), p.backlog.saturating_mul(p.softirq_cores.max(1))),
            nic: LazyFifo::new(1, p.txqueuelen),
            conntrack: Conntrack::new(p.conntrack_max()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conntrack_fills_expires_and_drops() {
        let mut ct = Conntrack::new(3);
        assert!(ct.open_tcp(0));
        assert!(ct.open_udp(0, 30));
        assert!(ct.open_tcp(1));
        assert!(!ct.open_tcp(2), "full: the new flow is dropped");
        assert_eq!(ct.drops, 1);
        ct.close_tcp(5, 120);
        assert_eq!(ct.len(10), 3, "TIME_WAIT keeps the entry");
        assert_eq!(ct.len(30), 2, "the UDP entry expired");
        assert!(ct.open_tcp(30));
        assert_eq!(ct.len(125), 2, "TIME_WAIT over");
        assert_eq!(ct.peak, 3);
    }

    #[test]
    fn syn_retransmissions_follow_linux() {
        // Since 6.5: four linear timeouts of 1 s, then doubling; 10
        // retransmissions, the last at 67 s, failure at 131 s (ip-sysctl.rst).
        let schedule = |p: &NodeParams| {
            let (mut t, mut sends, mut sent) = (0u64, vec![0u64], 1);
            loop {
                let (rto, again) = p.syn_rto_ns(sent);
                t += rto;
                if !again {
                    return (sends, t);
                }
                sends.push(t);
                sent += 1;
            }
        };
        let s = |v: &[u64]| v.iter().map(|&x| x * 1_000_000_000).collect::<Vec<_>>();
        let (sends, fail) = schedule(&NodeParams::default());
        assert_eq!(sends, s(&[0, 1, 2, 3, 4, 5, 7, 11, 19, 35, 67]));
        assert_eq!(fail, 131_000_000_000);
        // Before 6.5 (no linear timeouts): 1, 3, 7, 15, 31, 63; failure at 127 s.
        let (sends, fail) = schedule(&NodeParams { tcp_syn_linear_timeouts: 0, ..Default::default() });
        assert_eq!(sends, s(&[0, 1, 3, 7, 15, 31, 63]));
        assert_eq!(fail, 127_000_000_000);
        // The RTO stops doubling at TCP_RTO_MAX.
        let many = NodeParams { tcp_syn_retries: 20, tcp_syn_linear_timeouts: 0, ..Default::default() };
        assert_eq!(many.syn_rto_ns(15).0, TCP_RTO_MAX_NS);
    }

    #[test]
    fn kube_proxy_sizes_the_table() {
        assert_eq!(NodeParams::default().conntrack_max(), 131_072);
        let big = NodeParams { softirq_cores: 8, ..Default::default() };
        assert_eq!(big.conntrack_max(), 262_144);
    }
}
