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
//!   a connection refused with a RST (nothing listens) leaves its entry in
//!   CLOSE for `tcp_close_ns`, never ASSURED (nf_conntrack_proto_tcp.c: the
//!   RST moves the entry to CLOSE; ASSURED needs the handshake's last ACK);
//!   a UDP flow's entry lives `udp_timeout_ns`. When the table is full the
//!   kernel first tries to make room ([`Conntrack::room`]), as
//!   nf_conntrack_core.c does:
//!   - `early_drop`, on the packet's path: up to `NF_CT_EVICTION_RANGE` (8)
//!     hash buckets from the new tuple's are scanned and the non-ASSURED
//!     entries of the first bucket holding one are deleted. Here the
//!     non-ASSURED entries are refused TCP ones and UDP ones: a DNS query and its answer never
//!     make an ASSURED flow (nf_conntrack_proto_udp.c sets it only for a
//!     stream still active after 2 s); a TCP entry is ASSURED once the
//!     handshake's last ACK passes, a round trip after its SYN, and that
//!     window is ignored. Which 8 buckets a new tuple meets is down to its
//!     hash; deterministically, emu takes the scan to see
//!     [`EARLY_DROP_SCAN`] entries (8 buckets of the 4 entries a full table
//!     averages per bucket, kube-proxy setting `hashsize` to
//!     `nf_conntrack_max / 4`) and to find a victim when at least one in
//!     that many entries is a non-ASSURED one; it then evicts the oldest
//!     (the kernel evicts every non-ASSURED entry of that bucket, about one
//!     at that share).
//!   - Otherwise the packet is dropped ("nf_conntrack: table full, dropping
//!     packet"; counted in `drops`) and the garbage collector is told to
//!     early-drop: its next pass (`gc_worker`) deletes non-ASSURED entries
//!     and TCP entries in a closing state (`tcp_can_early_drop`:
//!     TIME_WAIT, CLOSE, FIN_WAIT, CLOSE_WAIT, LAST_ACK) while the table
//!     holds at least 95% of `nf_conntrack_max` (integer `max / 100 * 95`).
//!     The worker's interval adapts to the entries' timeouts between 1 and
//!     60 s (`GC_SCAN_INTERVAL_MIN`/`MAX`); emu runs its passes at fixed
//!     multiples of `conntrack_gc_interval_ns` from time 0 (the real phase
//!     is arbitrary) and evicts the oldest evictable entries first (the
//!     kernel, in bucket order, evicts ones of every age).
//!
//!   ESTABLISHED TCP entries are never evicted: a table full of them drops
//!   every new flow. Established flows continue.
//!
//! | parameter | default | source |
//! |---|---|---|
//! | `softirq_cores` | 4 | assumption: a 4-vCPU node, RSS spreading flows over every core |
//! | `backlog` | 1,000 per core | `net.core.netdev_max_backlog` default |
//! | `txqueuelen` | 1,000 | Linux's default for Ethernet devices |
//! | `conntrack_max` | max(32,768 x cores, 131,072) = 131,072 | kube-proxy's `--conntrack-max-per-core` 32,768 and `--conntrack-min` 131,072 (published-figures.md) |
//! | `tcp_time_wait_ns` | 120 s | `nf_conntrack_tcp_timeout_time_wait` default |
//! | `tcp_close_ns` | 10 s | `nf_conntrack_tcp_timeout_close` default: a SYN answered by a RST leaves its entry in CLOSE, not ASSURED |
//! | `udp_timeout_ns` | 30 s | `nf_conntrack_udp_timeout` default (kube-proxy leaves it) |
//! | `rto_ns` | 200 ms | Linux `TCP_RTO_MIN` |
//! | `dns_retry_ns` | 5 s | resolv.conf `timeout` default |
//! | `tcp_syn_retries` | 6 | `net.ipv4.tcp_syn_retries` default (Documentation/networking/ip-sysctl.rst) |
//! | `conntrack_gc_interval_ns` | 60 s | nf_conntrack_core.c `GC_SCAN_INTERVAL_MAX`: where the adaptive interval settles for entries with a minute or more to live (a table of TIME_WAIT entries) |
//! | `tcp_syn_linear_timeouts` | 4 | `net.ipv4.tcp_syn_linear_timeouts` default since Linux 6.5 (ip-sysctl.rst); 0 gives older kernels' 1, 2, 4 ... s and failure at 127 s |

use std::collections::VecDeque;

use emu_engine::LazyFifo;

/// Linux `TCP_TIMEOUT_INIT`: the RTO of a SYN before any RTT sample (RFC
/// 6298) [ns].
pub const TCP_TIMEOUT_INIT_NS: u64 = 1_000_000_000;

/// Linux `TCP_RTO_MAX` [ns].
pub const TCP_RTO_MAX_NS: u64 = 120_000_000_000;

/// Entries the packet path's `early_drop` scan is taken to see: its
/// `NF_CT_EVICTION_RANGE` of 8 hash buckets, 4 entries each in a full table
/// whose `hashsize` kube-proxy set to `nf_conntrack_max / 4`.
pub const EARLY_DROP_SCAN: u64 = 32;

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
    /// CLOSE of a TCP connection refused with a RST [ns].
    pub tcp_close_ns: u64,
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
    /// Interval of the conntrack garbage collector's passes [ns].
    pub conntrack_gc_interval_ns: u64,
}

impl Default for NodeParams {
    fn default() -> Self {
        NodeParams {
            softirq_cores: 4,
            backlog: 1_000,
            txqueuelen: 1_000,
            conntrack_max: 0,
            tcp_time_wait_ns: 120_000_000_000,
            tcp_close_ns: 10_000_000_000,
            udp_timeout_ns: 30_000_000_000,
            rto_ns: 200_000_000,
            dns_retry_ns: 5_000_000_000,
            tcp_syn_retries: 6,
            tcp_syn_linear_timeouts: 4,
            conntrack_gc_interval_ns: 60_000_000_000,
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

/// The three kinds of entry that expire, each with one timeout.
const CLOSING: usize = 0;
const UDP: usize = 1;
const REFUSED: usize = 2;
/// An empty class's front: later than any time.
const NONE: u64 = u64::MAX;

/// A node's conntrack table: counts, with expiry queues per timeout class
/// (each class has one timeout, so its expiries arrive in order and the
/// queue stays sorted: O(1) per operation).
///
/// Every new connection touches the tables of nodes drawn from the whole
/// cluster, so a table is laid out for the miss to memory that its first
/// touch costs: what every operation reads (the counts and each class's
/// earliest expiry) fills the first cache line, and the queues behind the
/// fronts, touched only when an entry comes or goes, follow.
#[derive(Clone, Debug)]
#[repr(C, align(64))]
pub struct Conntrack {
    max: u32,
    /// ESTABLISHED TCP entries (ASSURED, never evicted).
    open: u32,
    /// Entries in the three expiry classes.
    held: u32,
    /// Of them, the ones `early_drop` may evict: UDP and refused TCP
    /// (never ASSURED).
    unassured: u32,
    /// Most entries seen at once.
    pub peak: u32,
    /// Each class's earliest expiry ([`NONE`]: the class is empty):
    /// - `CLOSING`: TCP entries in TIME_WAIT (ASSURED, closing: the
    ///   collector may evict them);
    /// - `UDP`: UDP entries (never ASSURED: evictable by `early_drop`);
    /// - `REFUSED`: TCP entries of connections refused with a RST, in
    ///   CLOSE (never ASSURED: evictable by `early_drop`).
    front: [u64; 3],
    /// The collector pass that will early-drop, armed by a drop ([`NONE`]:
    /// none armed).
    gc_at: u64,
    /// Each class's later expiries, in order.
    rest: [VecDeque<u64>; 3],
    gc_interval_ns: u64,
    /// New flows' packets dropped because the table was full.
    pub drops: u64,
    /// Entries evicted to make room (by `early_drop` and the collector).
    pub early_drops: u64,
}

impl Conntrack {
    /// An empty table of `max` entries, its collector passing every
    /// `gc_interval_ns`.
    pub fn new(max: u32, gc_interval_ns: u64) -> Conntrack {
        Conntrack {
            max,
            open: 0,
            held: 0,
            unassured: 0,
            peak: 0,
            front: [NONE; 3],
            gc_at: NONE,
            rest: Default::default(),
            gc_interval_ns: gc_interval_ns.max(1),
            drops: 0,
            early_drops: 0,
        }
    }

    /// Adds an entry of `class` expiring at `at` (no earlier than the
    /// class's others).
    fn push(&mut self, class: usize, at: u64) {
        debug_assert!(at < NONE, "an expiry is a time");
        if self.front[class] == NONE {
            self.front[class] = at;
        } else {
            self.rest[class].push_back(at);
        }
        self.held += 1;
        self.unassured += u32::from(class != CLOSING);
    }

    /// Removes the earliest entry of `class` (which holds one).
    fn pop(&mut self, class: usize) {
        debug_assert!(self.front[class] != NONE, "popping an empty class");
        self.front[class] = self.rest[class].pop_front().unwrap_or(NONE);
        self.held -= 1;
        self.unassured -= u32::from(class != CLOSING);
    }

    fn purge(&mut self, now: u64) {
        for class in [CLOSING, UDP, REFUSED] {
            while self.front[class] <= now {
                self.pop(class);
            }
        }
    }

    fn count(&self) -> u32 {
        self.open + self.held
    }

    /// The class among `classes` whose earliest entry is the oldest (the
    /// first of them on a tie), if any holds one.
    fn oldest(&self, classes: &[usize]) -> Option<usize> {
        classes.iter().copied().filter(|&c| self.front[c] != NONE).min_by_key(|&c| self.front[c])
    }

    /// Brings the table to `now`: expiries, and an armed collector pass
    /// that came due (at its own time, after the expiries before it).
    fn catch_up(&mut self, now: u64) {
        if self.gc_at <= now {
            self.purge(self.gc_at);
            self.collect();
            self.gc_at = NONE;
        }
        self.purge(now);
    }

    /// The collector's early-drop pass: evicts the evictable entries,
    /// oldest first, while the table holds 95% of its size or more.
    fn collect(&mut self) {
        let floor = self.max / 100 * 95;
        while self.count() >= floor {
            let Some(class) = self.oldest(&[CLOSING, UDP, REFUSED]) else { return };
            self.pop(class);
            self.early_drops += 1;
        }
    }

    /// Entries at `now`.
    pub fn len(&mut self, now: u64) -> u32 {
        self.catch_up(now);
        self.count()
    }

    /// Whether no entry is live at `now`.
    pub fn is_empty(&mut self, now: u64) -> bool {
        self.len(now) == 0
    }

    /// Whether a new flow's first packet at `now` finds room, after
    /// `early_drop` if the table is full; `false`: the packet is dropped
    /// (counted) and the collector's next pass will early-drop.
    pub fn room(&mut self, now: u64) -> bool {
        let n = self.len(now);
        if n < self.max {
            return true;
        }
        if self.unassured as u64 * EARLY_DROP_SCAN >= n as u64 {
            if let Some(class) = self.oldest(&[UDP, REFUSED]) {
                self.pop(class);
            }
            self.early_drops += 1;
            return true;
        }
        self.drops += 1;
        if self.gc_at == NONE {
            let g = self.gc_interval_ns;
            self.gc_at = (now / g + 1) * g;
        }
        false
    }

    fn admit(&mut self, now: u64) -> bool {
        let ok = self.room(now);
        if ok {
            self.peak = self.peak.max(self.count() + 1);
        }
        ok
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
        self.catch_up(now);
        self.open -= 1;
        self.push(CLOSING, now + time_wait_ns);
    }

    /// An open TCP connection refused with a RST at `now`: CLOSE, for
    /// `close_ns`, not ASSURED.
    pub fn refuse_tcp(&mut self, now: u64, close_ns: u64) {
        assert!(self.open > 0, "refusing a connection conntrack never saw");
        self.catch_up(now);
        self.open -= 1;
        self.push(REFUSED, now + close_ns);
    }

    /// A new UDP flow at `now` living `timeout_ns`: `false` if full.
    pub fn open_udp(&mut self, now: u64, timeout_ns: u64) -> bool {
        let ok = self.admit(now);
        if ok {
            self.push(UDP, now + timeout_ns);
        }
        ok
    }
}

/// A node's packet queues: its softirq CPU and its NIC, side by side and
/// aligned to cache lines. Every capacity hop touches one node's queues, a
/// node drawn from the whole cluster, so at 65,000 nodes the first touch is
/// a miss to memory: each record spans as few lines as it can (256 bytes,
/// four lines, never five), and the conntrack table, which only a
/// connection's first packets touch, lives in its own array.
#[derive(Clone, Debug)]
#[repr(align(64))]
pub struct NodeQueues {
    /// Softirq CPU.
    pub cpu: LazyFifo,
    /// NIC transmit queue.
    pub nic: LazyFifo,
}

impl NodeQueues {
    /// A node's queues under `p`.
    pub fn new(p: &NodeParams) -> NodeQueues {
        NodeQueues {
            cpu: LazyFifo::new(p.softirq_cores.max(1), p.backlog.saturating_mul(p.softirq_cores.max(1))),
            nic: LazyFifo::new(1, p.txqueuelen),
        }
    }
}

/// Starts loading the two cache lines of `q` (a hint: no effect on the
/// run, none at all off x86-64).
#[inline]
pub fn prefetch(q: &LazyFifo) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let p = q as *const LazyFifo as *const i8;
        // SAFETY: prefetching is a hint that never faults, and both
        // addresses are inside `q` (a LazyFifo is 128 bytes).
        unsafe {
            _mm_prefetch(p, _MM_HINT_T0);
            _mm_prefetch(p.wrapping_add(64), _MM_HINT_T0);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = q;
}

impl Conntrack {
    /// A node's table under `p`.
    pub fn for_node(p: &NodeParams) -> Conntrack {
        Conntrack::new(p.conntrack_max(), p.conntrack_gc_interval_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEVER: u64 = 1 << 60;

    #[test]
    fn conntrack_fills_expires_and_drops() {
        let mut ct = Conntrack::new(3, NEVER);
        assert!(ct.open_tcp(0) && ct.open_tcp(0) && ct.open_tcp(1));
        assert!(!ct.open_tcp(2), "full of ESTABLISHED entries: the new flow is dropped");
        assert_eq!((ct.drops, ct.early_drops), (1, 0));
        ct.close_tcp(5, 120);
        assert_eq!(ct.len(10), 3, "TIME_WAIT keeps the entry");
        assert!(!ct.open_tcp(10), "and the packet path does not evict it (ASSURED)");
        assert!(ct.open_tcp(125), "TIME_WAIT over");
        assert_eq!(ct.peak, 3);
    }

    #[test]
    fn a_refused_connection_leaves_an_evictable_close_entry_for_10_s() {
        let mut ct = Conntrack::new(2, NEVER);
        assert!(ct.open_tcp(0) && ct.open_tcp(0));
        ct.refuse_tcp(1, 10);
        assert_eq!(ct.len(5), 2, "CLOSE keeps the entry");
        assert!(ct.open_tcp(5), "early_drop evicts it: not ASSURED (a TIME_WAIT one would stay)");
        assert_eq!((ct.drops, ct.early_drops), (0, 1));
        ct.refuse_tcp(6, 10);
        assert_eq!(ct.len(15), 2);
        assert_eq!(ct.len(16), 1, "CLOSE over after 10");
    }

    #[test]
    fn early_drop_evicts_a_udp_entry_when_the_scan_would_meet_one() {
        // 4 entries: one UDP (non-ASSURED) in 4 is at least 1 in 32.
        let mut ct = Conntrack::new(4, NEVER);
        assert!(ct.open_udp(0, 30) && ct.open_tcp(0) && ct.open_tcp(0) && ct.open_tcp(0));
        assert!(ct.open_tcp(1), "the UDP entry makes room");
        assert_eq!((ct.drops, ct.early_drops, ct.len(1)), (0, 1, 4));
        assert!(!ct.open_tcp(2), "nothing left to evict");
        // 64 entries: 2 UDP ones are 1 in 32 (evict), 1 is not (drop).
        let share = |udp: u32| {
            let mut ct = Conntrack::new(64, NEVER);
            (0..udp).for_each(|_| assert!(ct.open_udp(0, 30)));
            (udp..64).for_each(|_| assert!(ct.open_tcp(0)));
            ct.open_tcp(1)
        };
        assert!(share(2));
        assert!(!share(1));
    }

    #[test]
    fn the_collector_evicts_time_wait_entries_down_to_95_percent_after_a_drop() {
        // 100 connections closed at 1 s: a table full of TIME_WAIT (120 s).
        let s = 1_000_000_000u64;
        let mut ct = Conntrack::new(100, 60 * s);
        for _ in 0..100 {
            assert!(ct.open_tcp(0));
        }
        for _ in 0..100 {
            ct.close_tcp(s, 120 * s);
        }
        assert!(!ct.open_tcp(10 * s), "dropped: the collector is told to early-drop");
        assert!(!ct.open_tcp(59 * s), "its pass comes at 60 s");
        // At 60 s it evicts while 95 or more entries are left: 6 go.
        assert_eq!(ct.len(60 * s), 94);
        assert_eq!(ct.early_drops, 6);
        for _ in 0..6 {
            assert!(ct.open_tcp(61 * s));
        }
        assert!(!ct.open_tcp(62 * s), "full again: the next pass, at 120 s, is armed");
        assert_eq!(ct.len(119 * s), 100);
        assert_eq!(ct.len(120 * s), 94, "six more TIME_WAIT entries evicted");
        assert_eq!((ct.drops, ct.early_drops), (3, 12));
        // No drop, no pass: the collector leaves the table alone.
        assert_eq!(ct.len(180 * s), 6, "the first hundred's TIME_WAIT is over by 121 s");
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
