//! The control plane of a changing cluster, run as events in the world:
//! the timeline of changes, the pods' lifecycle (start, readiness probe,
//! preStop, SIGTERM, drain, SIGKILL), the Deployment controller, the
//! EndpointSlice controller, node failure and eviction, and every node's
//! kube-proxy sync loop.
//!
//! A static run (no `[[changes]]`) has no `Control` at all: none of this
//! runs and the data path reads the base cluster.

use crate::hash::HashMap;

use emu_engine::rng::{Domain, Stream};
use emu_engine::stats::{CoarseLatency, Tally};
use emu_engine::Scheduler;

use super::live::Cond;
use super::run::Ev;
use super::World;
use crate::cluster::{Cluster, TrafficPolicy};
use crate::dynamics::{ipam::Ipam, rollout, sync, Change, ChangeKind, ControlParams, SyncParams};
use crate::ids::{EpId, NodeId, PodId, ReqId, SpId};
use crate::proxy::Mode;

/// Random-stream domains of the control plane (never renumber).
const CONTROL_STREAM: Domain = Domain(4);
const WATCH_STREAM: Domain = Domain(5);

/// Where a pod is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PodState {
    /// Scheduled; sandbox, CNI ADD and containers under way; no IP yet.
    Starting,
    /// Containers running; the application listens from `listen_ns`.
    Running {
        /// When the application starts accepting connections [ns].
        listen_ns: u64,
    },
    /// Deleted: the preStop hook runs until `sigterm_ns`, then SIGTERM (the
    /// application stops accepting and exits when its in-flight requests
    /// are done), SIGKILL at `kill_ns` at the latest.
    Terminating {
        /// SIGTERM [ns].
        sigterm_ns: u64,
        /// SIGKILL [ns].
        kill_ns: u64,
    },
    /// The application exited or was killed; the sandbox (network
    /// namespace, address) is still there until its teardown.
    Exited,
    /// The sandbox is gone; the IP is free.
    Gone,
}

/// The control plane's record of one pod.
#[derive(Clone, Debug)]
pub(crate) struct PodRt {
    /// The base pod whose containers, ports and labels it has.
    pub proto: PodId,
    /// Its workload.
    pub workload: u32,
    /// The template generation it was made from.
    pub gen: u32,
    /// The change that created or deleted it (programming.csv rows).
    pub cause: u32,
    pub state: PodState,
    /// Readiness as the kubelet reports it.
    pub ready: bool,
    /// Ready for minReadySeconds.
    pub available: bool,
    /// When its conditions last changed [ns].
    pub cond_ns: u64,
    /// Consecutive readiness probe results (successes while not ready,
    /// failures while ready).
    pub probe_run: u32,
    /// Requests at its servers (queued or in service).
    pub inflight: u32,
    /// A slice update of its endpoints is pending.
    pub slice_pending: bool,
    /// Its endpoints.
    pub eps: Vec<(SpId, EpId)>,
}

impl PodRt {
    /// Whether the API still counts it in its ReplicaSet (not deleted).
    pub(in crate::world) fn active(&self) -> bool {
        matches!(self.state, PodState::Starting | PodState::Running { .. })
    }
}

/// A vanished SYN's DNAT, held by its conntrack entry for the
/// retransmissions; the deciding proxy counts the connection until it is
/// answered or given up.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pin {
    /// The endpoint.
    pub ep: EpId,
    /// Its Service port.
    pub sp: SpId,
    /// The node whose proxy decided.
    pub node: NodeId,
    /// How the connection arrived there.
    pub entry: crate::proxy::Entry,
}

/// A workload's run-time state.
#[derive(Clone, Debug)]
pub(crate) struct WorkloadRt {
    pub desired: u32,
    /// The current template generation.
    pub gen: u32,
    /// Its pods, ever.
    pub pods: Vec<PodId>,
    /// Names handed out so far (the next pod is `<name>-<n>`).
    pub named: u32,
    /// The change that last acted on it.
    pub cause: u32,
}

/// A node as the control plane sees it, and its kube-proxy.
#[derive(Clone, Debug)]
pub(crate) struct NodeCtl {
    /// Running (not failed).
    pub alive: bool,
    /// Ready as the node controller sees it.
    pub ready: bool,
    /// Cordoned: no new pods.
    pub cordoned: bool,
    /// A sync start is scheduled.
    pub scheduled: bool,
    /// A sync is writing rules; `reading` is the version it reads.
    pub running: bool,
    pub reading: u64,
    /// When the last sync started [ns].
    pub last_start: u64,
    /// When the next sync is a full one [ns] (kube-proxies started at
    /// random times before the run: a random phase of the full-sync period).
    pub next_full: u64,
    /// The watch lag of the current wait [ns].
    pub lag_ns: u64,
    /// In `Control::idle`.
    pub idle: bool,
    /// Bumped when a node fails, so its pending syncs are void.
    pub gen: u32,
    pub ipam: Option<Ipam>,
}

/// One published version of the endpoints.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Published {
    /// When the change it carries happened (a pod's condition) [ns].
    pub cause_ns: u64,
    /// When the slice (or Service) update was written [ns].
    pub at_ns: u64,
    /// The change it belongs to.
    pub change: u32,
    /// The Service ports it changed: `Control::log_ports[ports.0..ports.1]`.
    pub ports: (u32, u32),
}

/// Network programming latency of one change, over every node.
#[derive(Clone, Debug)]
pub struct ChangeStats {
    /// Index of the change in the timeline.
    pub change: u32,
    /// Its scenario key.
    pub key: &'static str,
    /// What it acted on.
    pub target: String,
    /// When it happened [ns].
    pub at_ns: u64,
    /// Endpoint updates published for it.
    pub versions: u64,
    /// Time from each update's cause to its rules on each node [ns].
    pub latency: CoarseLatency,
    /// Pods it created and deleted.
    pub created: u64,
    /// Pods deleted.
    pub deleted: u64,
}

/// What the control plane measured.
#[derive(Clone, Debug)]
pub struct ControlResults {
    /// Per change.
    pub changes: Vec<ChangeStats>,
    /// kube-proxy syncs, all nodes.
    pub syncs: u64,
    /// Of those, full syncs.
    pub full_syncs: u64,
    /// Sync durations [ns].
    pub sync_ns: Tally,
    /// Longest sync [ns].
    pub sync_max_ns: u64,
    /// Pods at the end that are running and ready.
    pub ready_pods: u64,
    /// Pods created at run time.
    pub pods_created: u64,
    /// Every pod created at run time, by id from the base's pod count on.
    pub pods: Vec<RuntimePod>,
    /// Per Service port: the endpoints added at run time (ids from the
    /// base's count on).
    pub extra_endpoints: Vec<Vec<crate::cluster::Endpoint>>,
    /// Per Service port: whether its endpoints changed during the run.
    pub changed_ports: Vec<bool>,
    /// Every step of every pod's life during the run: (time [ns], pod,
    /// step), in time order.
    pub steps: Vec<(u64, PodId, &'static str)>,
    /// EndpointSlices at the end: per Service port with endpoints, its
    /// listed endpoints in slices of `max_endpoints_per_slice`.
    pub slices: u64,
}

/// A pod the control plane created.
#[derive(Clone, Debug)]
pub struct RuntimePod {
    /// Its name (`<workload>-<n>`, n counting on from the workload's pods).
    pub name: String,
    /// Namespace index.
    pub namespace: u32,
    /// Its IP (0.0.0.0 if it never got one).
    pub ip: crate::addr::Ipv4,
    /// Its node.
    pub node: NodeId,
}

/// The control plane.
pub(crate) struct Control {
    pub changes: Vec<Change>,
    pub params: ControlParams,
    pub sync: SyncParams,
    pub mode: Mode,
    pub pods: Vec<PodRt>,
    pub workloads: Vec<WorkloadRt>,
    pub nodes: Vec<NodeCtl>,
    pub log: Vec<Published>,
    /// Running nodes with no sync scheduled or running, in the order they
    /// became idle (a new version wakes them).
    pub idle: Vec<NodeId>,
    /// The Service ports of every published version, in order.
    pub log_ports: Vec<SpId>,
    /// Per Service port: the serial of the last sync that counted it (each
    /// changed port is rewritten once per sync).
    pub counted: Vec<u64>,
    pub stats: Vec<ChangeStats>,
    /// Per change: its programming latencies (apart from `stats`, so the
    /// hot loop of `sync_end` touches only these).
    pub latency: Vec<CoarseLatency>,
    rng: Stream,
    watch: Vec<Stream>,
    /// (Service port, target port) memberships of each workload's pods.
    members: Vec<Vec<(SpId, u16)>>,
    /// Requests whose Service SYN vanished (a lost node): the endpoint it
    /// was DNATed to, which its conntrack entry pins for the retransmissions.
    pub pinned: HashMap<ReqId, Pin>,
    /// The load balancer's health view of every LoadBalancer Service port.
    pub lb: std::collections::BTreeMap<SpId, crate::world::lb::LbHealth>,
    /// Names of the pods created at run time.
    names: Vec<String>,
    /// Every step of every pod's life during the run: (time [ns], pod,
    /// step), in event order (`pods.csv`).
    pub steps: Vec<(u64, PodId, &'static str)>,
    /// Round-robin placement cursor.
    next_rr: u64,
    /// Service ports that exist and endpoints listed, for sync costs.
    pub ports_total: u64,
    pub eps_total: u64,
    syncs: u64,
    full_syncs: u64,
    sync_ns: Tally,
    sync_max_ns: u64,
    created: u64,
}

impl Control {
    /// The control plane of `cl` with `changes`.
    pub fn new(
        cl: &Cluster,
        changes: Vec<Change>,
        params: ControlParams,
        sync: SyncParams,
        mode: Mode,
        seed: u64,
    ) -> Control {
        let mut pod_eps: Vec<Vec<(SpId, EpId)>> = vec![Vec::new(); cl.pods.len()];
        let mut members: Vec<Vec<(SpId, u16)>> = vec![Vec::new(); cl.workloads.len()];
        let mut eps_total = 0;
        for (i, sp) in cl.service_ports.iter().enumerate() {
            let sp_id = SpId::new(i as u32);
            for (k, e) in sp.endpoints.iter().enumerate() {
                pod_eps[e.pod.index()].push((sp_id, EpId::new(k as u32)));
                let w = &mut members[cl.pods[e.pod.index()].workload as usize];
                if !w.contains(&(sp_id, e.port)) {
                    w.push((sp_id, e.port));
                }
            }
            eps_total += sp.endpoints.len() as u64;
        }
        let pods = cl
            .pods
            .iter()
            .zip(pod_eps)
            .enumerate()
            .map(|(i, (p, eps))| PodRt {
                proto: PodId::new(i as u32),
                workload: p.workload,
                gen: 0,
                cause: u32::MAX,
                state: PodState::Running { listen_ns: 0 },
                ready: true,
                available: true,
                cond_ns: 0,
                probe_run: 0,
                inflight: 0,
                slice_pending: false,
                eps,
            })
            .collect();
        let workloads = cl
            .workloads
            .iter()
            .map(|w| WorkloadRt {
                desired: w.pods.len() as u32,
                gen: 0,
                pods: w.pods.clone(),
                named: w.pods.len() as u32,
                cause: u32::MAX,
            })
            .collect();
        let nodes = (0..cl.nodes.len())
            .map(|_| NodeCtl {
                alive: true,
                ready: true,
                cordoned: false,
                scheduled: false,
                running: false,
                reading: 0,
                last_start: 0,
                next_full: 0,
                lag_ns: 0,
                idle: true,
                gen: 0,
                ipam: None,
            })
            .collect();
        let stats: Vec<ChangeStats> = changes
            .iter()
            .enumerate()
            .map(|(i, c)| ChangeStats {
                change: i as u32,
                key: c.kind.key(),
                target: describe(cl, &c.kind),
                at_ns: c.at_ns,
                versions: 0,
                latency: CoarseLatency::new(),
                created: 0,
                deleted: 0,
            })
            .collect();
        let ports_total = cl.service_ports.iter().filter(|p| !p.endpoints.is_empty()).count() as u64;
        Control {
            changes,
            params,
            sync,
            mode,
            pods,
            workloads,
            watch: (0..cl.nodes.len()).map(|n| Stream::new(seed, WATCH_STREAM, n as u64)).collect(),
            nodes,
            log: Vec::new(),
            idle: (0..cl.nodes.len()).map(NodeId::from_index).collect(),
            log_ports: Vec::new(),
            counted: vec![u64::MAX; cl.service_ports.len()],
            latency: vec![CoarseLatency::new(); stats.len()],
            stats,
            rng: Stream::new(seed, CONTROL_STREAM, 0),
            members,
            pinned: HashMap::default(),
            names: Vec::new(),
            steps: Vec::new(),
            lb: crate::world::lb::health_of(cl),
            next_rr: cl.pods.len() as u64,
            ports_total,
            eps_total,
            syncs: 0,
            full_syncs: 0,
            sync_ns: Tally::default(),
            sync_max_ns: 0,
            created: 0,
        }
    }

    /// The name and namespace index of `pod`, created at run time.
    pub(crate) fn pod_name(&self, cl: &Cluster, pod: PodId) -> (&str, u32) {
        let i = pod.index();
        (&self.names[i - cl.pods.len()], cl.workloads[self.pods[i].workload as usize].namespace)
    }

    /// What it measured; `state` holds the run-time pods' places and
    /// endpoint tables.
    pub fn results(&self, cl: &Cluster, state: &super::live::Live) -> ControlResults {
        let base = cl.pods.len();
        ControlResults {
            changes: self
                .stats
                .iter()
                .zip(&self.latency)
                .map(|(s, l)| ChangeStats { latency: l.clone(), ..s.clone() })
                .collect(),
            syncs: self.syncs,
            full_syncs: self.full_syncs,
            sync_ns: self.sync_ns,
            sync_max_ns: self.sync_max_ns,
            ready_pods: self.pods.iter().filter(|p| p.active() && p.ready).count() as u64,
            pods_created: self.created,
            pods: (base..self.pods.len())
                .map(|i| {
                    let w = &cl.workloads[self.pods[i].workload as usize];
                    RuntimePod {
                        name: self.names[i - base].clone(),
                        namespace: w.namespace,
                        ip: state.loc[i].ip,
                        node: state.loc[i].node,
                    }
                })
                .collect(),
            extra_endpoints: (0..cl.service_ports.len()).map(|sp| state.extra(SpId::from_index(sp)).to_vec()).collect(),
            steps: self.steps.clone(),
            slices: (0..cl.service_ports.len())
                .map(|sp| {
                    (state.listed(cl, SpId::from_index(sp)) as u64)
                        .div_ceil(self.params.max_endpoints_per_slice.max(1) as u64)
                })
                .sum(),
            changed_ports: state
                .tables
                .iter()
                .map(|t| t.as_ref().is_some_and(|t| t.history.len() > 1 || !t.extra.is_empty()))
                .collect(),
        }
    }
}

/// "deployment/web", "pod/web-3", "node/node-7", "3 Services".
fn describe(cl: &Cluster, k: &ChangeKind) -> String {
    match k {
        ChangeKind::Rollout(w) | ChangeKind::Scale { workload: w, .. } => {
            let w = &cl.workloads[*w as usize];
            format!("{}/{}", cl.namespaces[w.namespace as usize], w.name)
        }
        ChangeKind::DeletePod(p) => cl.pod_ref(*p),
        ChangeKind::DrainNode(n) | ChangeKind::FailNode(n) | ChangeKind::RecoverNode(n) => {
            cl.nodes[n.index()].name.clone()
        }
        ChangeKind::CreateServices(v) => format!("{} Services", v.len()),
    }
}

impl World<'_> {
    pub(in crate::world) fn ctl(&mut self) -> &mut Control {
        self.control.as_mut().expect("a changing cluster")
    }

    /// Schedules every change of the timeline and every node's periodic
    /// full resync.
    pub(in crate::world) fn start_control(&mut self, s: &mut Scheduler<Ev>) {
        let Some(ctl) = self.control.as_mut() else { return };
        let times: Vec<u64> = ctl.changes.iter().map(|c| c.at_ns).collect();
        let period = ctl.sync.sync_period_ns;
        let full = ctl.sync.full_sync_period_ns.max(1);
        let mut phases = Vec::with_capacity(ctl.nodes.len());
        for (w, nc) in ctl.watch.iter_mut().zip(ctl.nodes.iter_mut()) {
            phases.push(w.below(period.max(1)));
            nc.next_full = w.below(full);
        }
        for (i, at) in times.into_iter().enumerate() {
            self.live += 1;
            s.schedule_at(emu_engine::SimTime(at), Ev::Change { index: i as u32 });
        }
        for (n, phase) in phases.into_iter().enumerate() {
            // Not counted in `live`: periodic, it never ends a run.
            s.schedule_at(emu_engine::SimTime(phase), Ev::Resync { node: NodeId::new(n as u32) });
        }
        // Services created by a change are absent until then.
        let cl = self.cluster;
        for c in &self.control.as_ref().unwrap().changes {
            if let ChangeKind::CreateServices(svcs) = &c.kind {
                for &svc in svcs {
                    for &sp in &cl.services[svc.index()].ports {
                        self.state.absent(cl, sp);
                    }
                }
            }
        }
        let absent =
            self.state.tables.iter().filter(|t| t.as_ref().is_some_and(|t| !t.history[0].exists)).count() as u64;
        self.ctl().ports_total -= absent.min(self.ctl().ports_total);
    }

    /// Change `index` of the timeline happens.
    pub(in crate::world) fn change(&mut self, index: u32, s: &mut Scheduler<Ev>) {
        let now = s.now().as_nanos();
        let kind = self.ctl().changes[index as usize].kind.clone();
        match kind {
            ChangeKind::Rollout(w) => {
                let wl = &mut self.ctl().workloads[w as usize];
                wl.gen += 1;
                wl.cause = index;
                self.reconcile(w, s);
            }
            ChangeKind::Scale { workload, replicas } => {
                let wl = &mut self.ctl().workloads[workload as usize];
                wl.desired = replicas;
                wl.cause = index;
                self.reconcile(workload, s);
            }
            ChangeKind::DeletePod(pod) => {
                self.delete_pod(pod, index, s);
                let w = self.ctl().pods[pod.index()].workload;
                self.ctl().workloads[w as usize].cause = index;
                self.reconcile(w, s);
            }
            ChangeKind::DrainNode(node) => {
                self.ctl().nodes[node.index()].cordoned = true;
                for pod in self.pods_on(node) {
                    self.delete_pod(pod, index, s);
                    let w = self.ctl().pods[pod.index()].workload;
                    self.ctl().workloads[w as usize].cause = index;
                    self.reconcile(w, s);
                }
            }
            ChangeKind::FailNode(node) => self.fail_node(node, s),
            ChangeKind::RecoverNode(node) => self.recover_node(node, s),
            ChangeKind::CreateServices(svcs) => {
                let cl = self.cluster;
                let mut ports = 0;
                let mut eps = 0;
                for svc in svcs {
                    for &sp in &cl.services[svc.index()].ports {
                        let local = cl.services[svc.index()].external_traffic_policy == TrafficPolicy::Local
                            || cl.services[svc.index()].internal_traffic_policy == TrafficPolicy::Local;
                        let n = cl.service_ports[sp.index()].endpoints.len();
                        let version = self.state.version + 1;
                        self.state.version = version;
                        self.state.publish(cl, sp, version, local);
                        ports += 1;
                        eps += n as u32;
                        self.ctl().stats[index as usize].versions += 1;
                        let ctl = self.ctl();
                        let at = ctl.log_ports.len() as u32;
                        ctl.log_ports.push(sp);
                        ctl.log.push(Published { cause_ns: now, at_ns: now, change: index, ports: (at, at + 1) });
                    }
                }
                let ctl = self.ctl();
                ctl.ports_total += ports;
                ctl.eps_total += eps as u64;
                self.wake_proxies(s);
            }
        }
    }
}

/// Whether a pod's application accepts a new connection at `now`.
pub(crate) fn accepts(state: PodState, now: u64) -> bool {
    match state {
        PodState::Running { listen_ns } => now >= listen_ns,
        PodState::Terminating { sigterm_ns, .. } => now < sigterm_ns,
        _ => false,
    }
}

/// Whether a pod's application is still there to answer on an open
/// connection.
pub(crate) fn answers(state: PodState) -> bool {
    matches!(state, PodState::Running { .. } | PodState::Terminating { .. })
}

mod nodes;
mod pods;
mod proxy;
