//! The external load balancer of LoadBalancer Services: which node a new
//! connection enters by, and its health checks.
//!
//! The load balancer starts a run in steady state: with
//! externalTrafficPolicy Local, nodes without a local endpoint already
//! fail the checks of healthCheckNodePort (kube-proxy answers 503) and get
//! nothing; with Cluster every node is in. In a changing cluster each
//! node's answer follows its own kube-proxy (healthCheckNodePort counts
//! the node's *ready* local endpoints in its last sync; with Cluster,
//! kube-proxy's healthz answers while the node runs) and the load balancer
//! believes a new answer only after `unhealthy_threshold` (or
//! `healthy_threshold`) consecutive checks, `check_interval` apart, at
//! multiples of the interval from time 0.

use std::collections::BTreeMap;

use super::{LbPolicy, World};
use crate::cluster::{Cluster, TrafficPolicy};
use crate::ids::{NodeId, SpId};

/// The load balancer's view of one Service port's nodes in a changing
/// cluster.
#[derive(Clone, Debug)]
pub(crate) struct LbHealth {
    /// Per node: what its health check answers (healthy or not) and since
    /// when [ns]; an answer since time 0 is settled (steady state).
    answer: Vec<(bool, u64)>,
    /// The nodes believed healthy, valid until [ns].
    cache: Option<(u64, Vec<NodeId>)>,
}

impl LbHealth {
    /// Steady state of `sp` at time 0.
    fn new(cl: &Cluster, sp: SpId) -> LbHealth {
        let port = &cl.service_ports[sp.index()];
        let local = cl.services[port.service.index()].external_traffic_policy == TrafficPolicy::Local;
        let answer =
            (0..cl.nodes.len()).map(|n| (!local || port.local.contains_key(&NodeId::from_index(n)), 0)).collect();
        LbHealth { answer, cache: None }
    }

    /// Node `node` answers `healthy` from `now` on.
    pub fn set(&mut self, node: NodeId, healthy: bool, now: u64) {
        let a = &mut self.answer[node.index()];
        if a.0 != healthy {
            *a = (healthy, now);
            self.cache = None;
        }
    }

    /// The nodes the load balancer believes healthy at `now`, and until
    /// when that holds.
    fn believed(&self, interval: u64, unhealthy: u32, healthy: u32, now: u64) -> (u64, Vec<NodeId>) {
        let mut until = u64::MAX;
        let mut nodes = Vec::new();
        for (n, &(answer, since)) in self.answer.iter().enumerate() {
            let flip = if since == 0 {
                0
            } else {
                let first = since.div_ceil(interval.max(1)) * interval;
                let k = if answer { healthy } else { unhealthy };
                first + interval * (k.max(1) as u64 - 1)
            };
            let believed = if now >= flip { answer } else { !answer };
            if flip > now {
                until = until.min(flip);
            }
            if believed {
                nodes.push(NodeId::from_index(n));
            }
        }
        (until, nodes)
    }
}

/// Health state of every LoadBalancer Service port.
pub(crate) fn health_of(cl: &Cluster) -> BTreeMap<SpId, LbHealth> {
    (0..cl.service_ports.len())
        .map(SpId::from_index)
        .filter(|sp| cl.services[cl.service_ports[sp.index()].service.index()].load_balancer_ip.is_some())
        .map(|sp| (sp, LbHealth::new(cl, sp)))
        .collect()
}

impl World<'_> {
    /// The load balancer's node for a new connection's SYN: `kept` (the
    /// node it sent this connection's earlier SYN to) while that node is
    /// still healthy, else a fresh choice.
    pub(super) fn lb_node(&mut self, flow: usize, sp: SpId, now: u64, kept: Option<NodeId>) -> NodeId {
        if let Some(kept) = kept.filter(|kept| self.lb_healthy(sp, now).is_none_or(|local| local.contains(kept))) {
            return kept;
        }
        self.lb_pick(flow, sp, now)
    }

    /// The node the load balancer of Service port `sp` sends a new
    /// connection to at time `now`.
    pub(super) fn lb_pick(&mut self, flow: usize, sp: SpId, now: u64) -> NodeId {
        let cl = self.cluster;
        let service = cl.service_ports[sp.index()].service;
        let n = cl.nodes.len() as u32;
        let count = self.lb_healthy(sp, now).map_or(n, |h| h.len() as u32);
        let k = match self.params.load_balancer.policy {
            LbPolicy::Random => self.flows[flow].rng.below(count as u64) as u32,
            LbPolicy::RoundRobin => {
                let c = self.lb_cursor.entry(service).or_insert(0);
                let k = *c % count;
                *c = c.wrapping_add(1);
                k
            }
        };
        match self.lb_healthy(sp, now) {
            Some(h) => h[k as usize],
            None => NodeId::new(k),
        }
    }

    /// The nodes the load balancer of `sp` sends to at `now`, when its
    /// health checks have taken some out; `None` while every node is in.
    /// If every node fails the checks, the load balancer fails open to all.
    fn lb_healthy(&mut self, sp: SpId, now: u64) -> Option<&[NodeId]> {
        if self.control.is_some() {
            return self.lb_healthy_now(sp, now);
        }
        let cl = self.cluster;
        let port = &cl.service_ports[sp.index()];
        let svc = &cl.services[port.service.index()];
        let local_only = svc.external_traffic_policy == TrafficPolicy::Local && !port.local.is_empty();
        if local_only {
            Some(self.healthy_nodes(sp))
        } else {
            None
        }
    }

    /// `lb_healthy` in a changing cluster.
    fn lb_healthy_now(&mut self, sp: SpId, now: u64) -> Option<&[NodeId]> {
        let lb = &self.params.load_balancer;
        let (interval, unhealthy, healthy) = (lb.check_interval_ns, lb.unhealthy_threshold, lb.healthy_threshold);
        let nodes = self.cluster.nodes.len();
        let h = self.control.as_deref_mut()?.lb.get_mut(&sp)?;
        if h.cache.as_ref().is_none_or(|(until, _)| now >= *until) {
            h.cache = Some(h.believed(interval, unhealthy, healthy, now));
        }
        let list = &h.cache.as_ref().expect("computed above").1;
        (!list.is_empty() && list.len() < nodes).then_some(list.as_slice())
    }

    /// The nodes with a local endpoint of `sp`, in node order.
    pub(super) fn healthy_nodes(&mut self, sp: SpId) -> &[NodeId] {
        let cl = self.cluster;
        self.healthy.entry(sp).or_insert_with(|| {
            // In node order: `NodeId` orders by index.
            let mut v: Vec<NodeId> = cl.service_ports[sp.index()].local.keys().copied().collect();
            v.sort_unstable();
            v
        })
    }

    /// Node `node`'s kube-proxy finished a sync (or the node failed or came
    /// back): what its health checks answer from now on.
    pub(super) fn lb_answers(&mut self, node: NodeId, now: u64) {
        let cl = self.cluster;
        let Some(ctl) = self.control.as_deref_mut() else { return };
        let alive = ctl.nodes[node.index()].alive;
        for (&sp, h) in ctl.lb.iter_mut() {
            let port = &cl.service_ports[sp.index()];
            let local = cl.services[port.service.index()].external_traffic_policy == TrafficPolicy::Local;
            let healthy = alive && (!local || self.state.view(cl, sp, node).has_local_ready(node));
            h.set(node, healthy, now);
        }
    }
}
