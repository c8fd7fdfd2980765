//! `sources.csv`'s counts: the requests each server pod received, by flow
//! and by the source address it saw (as `conntrack -L` or a server's
//! access log would show them). The first `MAX_SOURCES` distinct triples
//! are kept; the requests of later ones are counted by the source's kind.

use super::run::LOCALHOST;
use super::World;
use crate::addr::Ipv4;
use crate::ids::{ConnId, PodId};

impl World<'_> {
    /// Counts a request of `flow` that `conn` brought to `pod` from `src`.
    /// The first of a run of them on `conn` goes into `sources` at once:
    /// whether its triple is among the first `MAX_SOURCES` is decided at
    /// its first request, as if each were counted there; the rest wait in
    /// the connection's counts until it settles (a kept-alive connection's
    /// requests then cost no map lookup each).
    pub(super) fn count_served(&mut self, conn: ConnId, flow: u32, pod: PodId, src: Ipv4) {
        let c = &mut self.conn_counts[conn.index()];
        if c.served_flow == flow && c.served < u32::MAX {
            c.served += 1;
            return;
        }
        self.settle_served(conn);
        self.conn_counts[conn.index()].served_flow = flow;
        self.count_source(flow, pod, src, 1);
    }

    /// Adds the requests `conn` holds for `sources` there.
    pub(super) fn settle_served(&mut self, conn: ConnId) {
        let c = &mut self.conn_counts[conn.index()];
        let (n, flow) = (std::mem::take(&mut c.served), c.served_flow);
        if n > 0 {
            let c = self.conns.get(conn);
            let pod = c.server_pod.expect("a request reaches a pod");
            self.count_source(flow, pod, c.src, n as u64);
        }
    }

    /// Counts `n` requests `pod` received from `src` for `flow`: in
    /// `sources` if the triple is there or there is room, else by the
    /// source's kind. A triple once left out stays out (`sources` only
    /// grows), so counting a triple's requests later counts them where its
    /// first went.
    fn count_source(&mut self, flow: u32, pod: PodId, src: Ipv4, n: u64) {
        if let Some(v) = self.sources.get_mut(&(flow, pod, src)) {
            *v += n;
        } else if self.sources.len() < self.max_sources {
            self.sources.insert((flow, pod, src), n);
        } else {
            let cl = self.cluster;
            let kind = if src == LOCALHOST {
                "localhost"
            } else if cl.pod_by_ip(src).is_some() {
                "pod"
            } else if cl.node_by_ip(src).is_some() || cl.node_by_bridge_ip(src).is_some() {
                "node"
            } else {
                "external"
            };
            *self.sources_overflow.entry((flow, pod, kind)).or_insert(0) += n;
        }
    }
}
