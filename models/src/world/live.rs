//! The cluster as it is now: the time-zero base (`Cluster`, built once and
//! borrowed) plus the run-time state that changes (pods created, deleted,
//! moved through their lifecycle; endpoint conditions; what each node's
//! kube-proxy has programmed).
//!
//! **Endpoints have stable ids.** `EpId` `i` of a Service port is its `i`-th
//! endpoint ever: the base endpoints first (in pod order, as the build laid
//! them out), then every endpoint added at run time, appended. Ids are
//! never reused, so hit counts, affinity and IPVS state keyed by them stay
//! meaningful while the set changes, and they are deterministic.
//!
//! **Per-node views without copies.** Every published change of a Service
//! port's endpoints is a snapshot with a global version number, kept in
//! the port's history; each node remembers only the version of its last
//! completed sync. A node's view of a port is the latest snapshot not
//! newer than that version: memory is O(changes + nodes), not O(nodes x
//! Services). A port that never changes has no table at all: its one
//! snapshot is the base cluster's endpoint list (all ready).

use crate::hash::HashMap;

use crate::addr::Ipv4;
use crate::cluster::{Cluster, Endpoint, ServicePort};
use crate::ids::{EpId, NodeId, PodId, SpId};
use crate::proxy::Candidates;

/// A set of endpoint ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum EpSet {
    /// Ids `0 .. n` (the base endpoints, all ready).
    Prefix(u32),
    /// These ids, in id order.
    List(Vec<EpId>),
}

impl EpSet {
    fn len(&self) -> u32 {
        match self {
            EpSet::Prefix(n) => *n,
            EpSet::List(v) => v.len() as u32,
        }
    }

    fn candidates(&self) -> Candidates<'_> {
        match self {
            EpSet::Prefix(n) => Candidates::All(*n),
            EpSet::List(v) => Candidates::Subset(v),
        }
    }
}

/// Node-local subsets of a snapshot (traffic policy Local).
#[derive(Clone, Debug)]
enum LocalSets {
    /// The base cluster's (`ServicePort::local`).
    Base,
    /// Its own.
    Own(HashMap<NodeId, Vec<EpId>>),
}

/// An endpoint's conditions, as the EndpointSlice controller writes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) struct Cond {
    /// Listed in the slice at all (the pod exists and has an IP).
    pub listed: bool,
    /// `ready`: the pod is Ready and not terminating.
    pub ready: bool,
    /// `serving`: the pod's readiness probe passes (terminating or not).
    pub serving: bool,
    /// `terminating`: the pod is being deleted.
    pub terminating: bool,
}

/// One published state of a Service port's endpoints.
#[derive(Clone, Debug)]
pub(crate) struct Snap {
    /// The global version that published it (0: the base).
    pub version: u64,
    /// Ready endpoints.
    ready: EpSet,
    /// Serving and terminating endpoints (KEP-1669's fallback).
    serving: EpSet,
    local_ready: LocalSets,
    local_serving: LocalSets,
    /// Whether the Service exists yet (one created by a change does not
    /// before its creation).
    pub exists: bool,
}

/// A Service port's run-time endpoint table.
#[derive(Clone, Debug)]
pub(crate) struct EpTable {
    /// Endpoints added at run time: id `base + i`.
    pub extra: Vec<Endpoint>,
    /// Current conditions of every endpoint, by id.
    pub cond: Vec<Cond>,
    /// Published snapshots, in version order; the first is version 0.
    pub history: Vec<Snap>,
    /// Endpoints listed now (in the slices).
    pub listed: u32,
}

/// A node's view of one Service port: which endpoints its kube-proxy
/// sends new connections to.
pub(crate) struct View<'a> {
    snap: Option<&'a Snap>,
    base: &'a ServicePort,
}

impl<'a> View<'a> {
    /// Whether the Service exists and has an endpoint that may get
    /// traffic (ready, or serving and terminating); without one kube-proxy
    /// REJECTs.
    pub fn usable(&self) -> bool {
        match self.snap {
            None => !self.base.endpoints.is_empty(),
            Some(s) => s.exists && (s.ready.len() > 0 || s.serving.len() > 0),
        }
    }

    /// Candidates for traffic policy Cluster: the ready endpoints, or when
    /// none is ready the serving, terminating ones (KEP-1669).
    pub fn cluster(&self) -> Candidates<'a> {
        match self.snap {
            None => Candidates::All(self.base.endpoints.len() as u32),
            Some(s) if s.ready.len() > 0 => s.ready.candidates(),
            Some(s) => s.serving.candidates(),
        }
    }

    /// Candidates for traffic policy Local on `node`: its ready endpoints,
    /// or its serving, terminating ones.
    pub fn local(&self, node: NodeId) -> Candidates<'a> {
        let base = || Candidates::Subset(self.base.local_endpoints(node));
        let Some(s) = self.snap else { return base() };
        let pick = |sets: &'a LocalSets| match sets {
            LocalSets::Base => base(),
            LocalSets::Own(m) => Candidates::Subset(m.get(&node).map_or(&[][..], Vec::as_slice)),
        };
        let ready = pick(&s.local_ready);
        if !ready.is_empty() {
            return ready;
        }
        pick(&s.local_serving)
    }

    /// Whether `node` has a ready local endpoint: kube-proxy's
    /// healthCheckNodePort answers 200 then (terminating endpoints do not
    /// count), 503 otherwise.
    pub fn has_local_ready(&self, node: NodeId) -> bool {
        match self.snap {
            None => !self.base.local_endpoints(node).is_empty(),
            Some(s) => match &s.local_ready {
                LocalSets::Base => !self.base.local_endpoints(node).is_empty(),
                LocalSets::Own(m) => m.get(&node).is_some_and(|v| !v.is_empty()),
            },
        }
    }
}

/// Where a pod is: its node and address (the hot part of a pod).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PodLoc {
    /// Its node.
    pub node: NodeId,
    /// Its IP (0.0.0.0 before CNI ADD).
    pub ip: Ipv4,
}

/// The endpoint tables and pod locations of a run.
pub(crate) struct Live {
    /// Every pod ever, by id: base pods first.
    pub loc: Vec<PodLoc>,
    /// Per Service port; `None` while it is the base's.
    pub tables: Vec<Option<Box<EpTable>>>,
    /// Pod IPs whose owner changed at run time (`None`: free).
    pub ip_owner: HashMap<Ipv4, Option<PodId>>,
    /// Per node: the version its proxy rules reflect.
    pub synced: Vec<u64>,
    /// The last version published.
    pub version: u64,
}

impl Live {
    /// The time-zero state of `cl`.
    pub fn new(cl: &Cluster) -> Live {
        Live {
            loc: cl.pods.iter().map(|p| PodLoc { node: p.node, ip: p.ip }).collect(),
            tables: vec![None; cl.service_ports.len()],
            ip_owner: HashMap::default(),
            synced: vec![0; cl.nodes.len()],
            version: 0,
        }
    }

    /// The pod at `ip` now.
    pub fn pod_by_ip(&self, cl: &Cluster, ip: Ipv4) -> Option<PodId> {
        match self.ip_owner.get(&ip) {
            Some(owner) => *owner,
            None => cl.pod_by_ip(ip),
        }
    }

    /// Endpoint `ep` of Service port `sp`.
    #[inline]
    pub fn endpoint(&self, cl: &Cluster, sp: SpId, ep: EpId) -> Endpoint {
        let base = &cl.service_ports[sp.index()].endpoints;
        match base.get(ep.index()) {
            Some(&e) => e,
            None => {
                self.tables[sp.index()].as_ref().expect("a run-time endpoint has a table").extra
                    [ep.index() - base.len()]
            }
        }
    }

    /// Endpoints of `sp` listed in its slices now.
    pub fn listed(&self, cl: &Cluster, sp: SpId) -> u32 {
        self.tables[sp.index()].as_ref().map_or(cl.service_ports[sp.index()].endpoints.len() as u32, |t| t.listed)
    }

    /// Endpoints added to `sp` at run time.
    #[inline]
    pub fn extra(&self, sp: SpId) -> &[Endpoint] {
        self.tables[sp.index()].as_ref().map_or(&[], |t| t.extra.as_slice())
    }

    /// Endpoints of `sp` ever (the size of its id space).
    pub fn endpoints_ever(&self, cl: &Cluster, sp: SpId) -> usize {
        cl.service_ports[sp.index()].endpoints.len() + self.tables[sp.index()].as_ref().map_or(0, |t| t.extra.len())
    }

    /// Service port `sp` as published at `version` (`u64::MAX`: the latest,
    /// what controllers and CoreDNS see).
    #[inline]
    pub fn at<'a>(&'a self, cl: &'a Cluster, sp: SpId, version: u64) -> View<'a> {
        let base = &cl.service_ports[sp.index()];
        let snap = self.tables[sp.index()].as_ref().map(|t| {
            let h = &t.history;
            if h.len() == 1 || version == u64::MAX {
                h.last().unwrap()
            } else {
                // The last snapshot with version <= `version`.
                let i = h.partition_point(|s| s.version <= version);
                &h[i.max(1) - 1]
            }
        });
        View { snap, base }
    }

    /// Service port `sp` as node `node`'s kube-proxy has programmed it.
    #[inline]
    pub fn view<'a>(&'a self, cl: &'a Cluster, sp: SpId, node: NodeId) -> View<'a> {
        self.at(cl, sp, self.synced[node.index()])
    }

    /// The table of `sp`, created from the base on first use.
    pub fn table(&mut self, cl: &Cluster, sp: SpId) -> &mut EpTable {
        self.tables[sp.index()].get_or_insert_with(|| {
            let n = cl.service_ports[sp.index()].endpoints.len() as u32;
            Box::new(EpTable {
                extra: Vec::new(),
                cond: vec![Cond { listed: true, ready: true, serving: true, terminating: false }; n as usize],
                listed: n,
                history: vec![Snap {
                    version: 0,
                    ready: EpSet::Prefix(n),
                    serving: EpSet::List(Vec::new()),
                    local_ready: LocalSets::Base,
                    local_serving: LocalSets::Own(HashMap::default()),
                    exists: true,
                }],
            })
        })
    }

    /// Marks `sp` absent until it is created (a Service of a
    /// `create_services` change).
    pub fn absent(&mut self, cl: &Cluster, sp: SpId) {
        let t = self.table(cl, sp);
        t.history[0] = Snap { exists: false, ..t.history[0].clone() };
    }

    /// Publishes `sp`'s current conditions as a snapshot of `version`.
    /// `local_policy`: whether node-local subsets are needed.
    pub fn publish(&mut self, cl: &Cluster, sp: SpId, version: u64, local_policy: bool) {
        let base_len = cl.service_ports[sp.index()].endpoints.len();
        let loc = &self.loc;
        let t = self.tables[sp.index()].as_mut().expect("published ports have a table");
        let node_of = |i: usize| {
            let e = if i < base_len { cl.service_ports[sp.index()].endpoints[i] } else { t.extra[i - base_len] };
            loc[e.pod.index()].node
        };
        let (mut ready, mut serving) = (Vec::new(), Vec::new());
        let (mut lr, mut ls): (HashMap<NodeId, Vec<EpId>>, HashMap<NodeId, Vec<EpId>>) = Default::default();
        for (i, c) in t.cond.iter().enumerate() {
            let id = EpId::new(i as u32);
            if !c.listed {
                continue;
            }
            if c.ready {
                ready.push(id);
                if local_policy {
                    lr.entry(node_of(i)).or_default().push(id);
                }
            } else if c.serving && c.terminating {
                serving.push(id);
                if local_policy {
                    ls.entry(node_of(i)).or_default().push(id);
                }
            }
        }
        let exists = true;
        t.history.push(Snap {
            version,
            ready: EpSet::List(ready),
            serving: EpSet::List(serving),
            local_ready: LocalSets::Own(lr),
            local_serving: LocalSets::Own(ls),
            exists,
        });
    }

    /// Drops the snapshots no node can read any more: those older than the
    /// newest one at or below `oldest` (the lowest version any running node
    /// holds). Keeps memory bounded over long runs.
    pub fn prune(&mut self, oldest: u64) {
        for t in self.tables.iter_mut().flatten() {
            let keep = t.history.partition_point(|s| s.version <= oldest).max(1) - 1;
            if keep > 0 {
                t.history.drain(..keep);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::testing;

    fn set(live: &mut Live, cl: &Cluster, sp: SpId, ep: u32, c: Cond) {
        let t = live.table(cl, sp);
        t.cond[ep as usize] = c;
    }

    #[test]
    fn views_follow_each_node_s_version_and_fall_back_to_terminating_endpoints() {
        let cl = testing::services_cluster(2, 1, 3);
        let sp = SpId::new(3); // svc-0's port, after kube-dns's three
        let mut live = Live::new(&cl);
        let (n0, n1) = (NodeId::new(0), NodeId::new(1));
        assert!(matches!(live.view(&cl, sp, n0).cluster(), Candidates::All(3)), "the base: all 3 ready");
        let draining = Cond { listed: true, ready: false, serving: true, terminating: true };
        let gone = Cond { listed: false, ..Cond::default() };
        set(&mut live, &cl, sp, 0, draining);
        live.publish(&cl, sp, 1, false);
        // Node 0 synced version 1, node 1 did not: they disagree.
        live.synced[0] = 1;
        let ids = |c: Candidates| (0..c.len()).map(|i| c.get(i).get()).collect::<Vec<_>>();
        assert_eq!(ids(live.view(&cl, sp, n0).cluster()), [1, 2]);
        assert_eq!(ids(live.view(&cl, sp, n1).cluster()), [0, 1, 2]);
        // No ready endpoint left: new connections go to the serving,
        // terminating ones (KEP-1669); none at all: REJECT.
        set(&mut live, &cl, sp, 1, draining);
        set(&mut live, &cl, sp, 2, gone);
        live.publish(&cl, sp, 2, false);
        live.synced[0] = 2;
        assert_eq!(ids(live.view(&cl, sp, n0).cluster()), [0, 1]);
        assert!(live.view(&cl, sp, n0).usable());
        set(&mut live, &cl, sp, 0, gone);
        set(&mut live, &cl, sp, 1, gone);
        live.publish(&cl, sp, 3, false);
        live.synced[0] = 3;
        assert!(!live.view(&cl, sp, n0).usable());
        assert_eq!(ids(live.view(&cl, sp, n1).cluster()), [0, 1, 2], "node 1 still on the base");
        // Nothing reads versions below 2 any more: 1 is dropped, 2 and 3 stay.
        live.synced[1] = 2;
        live.prune(2);
        assert_eq!(live.tables[sp.index()].as_ref().unwrap().history.len(), 2);
        assert_eq!(ids(live.view(&cl, sp, n1).cluster()), [0, 1]);
    }
}
