//! The world: a cluster, its data path, kube-proxy, DNS and traffic, run as
//! one discrete-event model.
//!
//! The walk of one request (see docs/architecture.md):
//! 1. **Arrival**: the flow's arrival process fires; a request record is
//!    taken from a slab and its timeout joins the flow's timeout FIFO.
//! 2. **Connection**: an idle kept-alive connection is reused, or a new one
//!    is set up: the name is resolved (each DNS query a UDP exchange with
//!    CoreDNS through the `kube-dns` Service), the client node's kube-proxy
//!    picks the endpoint and says what the first packet costs, the
//!    connection keeps its path, and the SYN / SYN-ACK walk it.
//! 3. **Hops**: each message gets its leg built from the path and walks it
//!    (`walk.rs`): delay hops summed into one event, one event per capacity
//!    hop (node CPU, NIC); every hop adds its time to the flow's tallies
//!    (`hops.csv`).
//! 4. **Server**: the endpoint pod's server queues and serves the request,
//!    then the response walks the reverse leg.
//! 5. **Done**: the latency goes into the flow's histogram; the connection
//!    is kept or closed; the record returns to the slab.

mod connect;
mod control;
mod events;
mod fate;
mod flows;
mod hints;
mod ingress;
mod lb;
mod legs;
mod live;
mod policy;
mod resolve;
mod run;
mod series;
mod sources;
mod trace;
mod walk;

use crate::hash::HashMap;
use std::collections::BTreeMap;

use emu_engine::rng::{Domain, Stream};
use emu_engine::stats::{Latency, Tally};
use emu_engine::{Dist, Fifo, Slab};

use crate::addr::Ipv4;
use crate::cluster::{BuildError, Cluster, Protocol};
use crate::datapath::{DataPathParams, Path, Place, HOP_KINDS};
use crate::dns::{DnsParams, DnsPlan};
use crate::ids::{ClientId, ConnId, EpId, NodeId, PodId, ReqId, ServerId, SpId, SvcId};
use crate::proxy::{Proxy, ProxyModel, ProxyParams};
use crate::traffic::{Arrivals, Client, Flow, Server, FAILURES};

pub use control::{ChangeStats, ControlResults, RuntimePod};
pub use policy::PolicyCounts;
pub use run::Ev;
pub use series::IntervalRow;
pub use trace::{EventKind, HopStep, Outcome, Sock, Step, Trace, TraceRequest, What};

/// Random-stream domains. Part of the reproducibility contract: never
/// renumber.
const FLOW_STREAM: Domain = Domain(1);
// Domain(2) is retired (it was a per-node stream); never reuse it.
const SERVER_STREAM: Domain = Domain(3);

/// Distinct (flow, server pod, source address) triples `sources.csv`
/// lists one by one; requests beyond are counted by source kind, so a run
/// of millions of clients keeps a bounded table.
pub const MAX_SOURCES: usize = 100_000;

/// Every model parameter of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    /// Master seed.
    pub seed: u64,
    /// Data path.
    pub datapath: DataPathParams,
    /// kube-proxy.
    pub proxy: ProxyParams,
    /// The external load balancer of LoadBalancer Services.
    pub load_balancer: LbParams,
    /// The ingress controller.
    pub ingress: IngressParams,
    /// Width of a `timeseries.csv` interval [ns] (default 100 ms).
    pub interval_ns: u64,
    /// Node capacities.
    pub node: crate::node::NodeParams,
    /// Cluster DNS.
    pub dns: DnsParams,
    /// The timeline of changes (empty: a static cluster).
    pub changes: Vec<crate::dynamics::Change>,
    /// The control plane of a changing cluster.
    pub control: crate::dynamics::ControlParams,
    /// kube-proxy's sync loop and its costs.
    pub sync: crate::dynamics::SyncParams,
    /// How NetworkPolicy is enforced (its first-packet cost).
    pub policy: crate::policy::cost::Enforcer,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            seed: 0,
            datapath: DataPathParams::default(),
            proxy: ProxyParams::default(),
            load_balancer: LbParams::default(),
            ingress: IngressParams::default(),
            interval_ns: 100_000_000,
            node: crate::node::NodeParams::default(),
            dns: DnsParams::default(),
            changes: Vec::new(),
            control: Default::default(),
            sync: Default::default(),
            policy: Default::default(),
        }
    }
}

/// How the external load balancer of LoadBalancer Services spreads
/// connections over nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LbPolicy {
    /// A node drawn uniformly per connection (flow hashing spreads
    /// connections this way; the default).
    #[default]
    Random,
    /// Nodes in turn, per Service.
    RoundRobin,
}

/// The external load balancer's choice of node and its health checking
/// (its forwarding latency is the data path's `load_balancer_ns`).
///
/// | parameter | default | source |
/// |---|---|---|
/// | `policy` | random | flow-hash spreading, as passthrough cloud load balancers do |
/// | `check_interval_ns` | 5 s | Google Cloud health check default `checkIntervalSec` |
/// | `unhealthy_threshold` | 2 | Google Cloud health check default `unhealthyThreshold` |
/// | `healthy_threshold` | 2 | Google Cloud health check default `healthyThreshold` |
///
/// With externalTrafficPolicy Local, a node without a local endpoint fails
/// the load balancer's check of healthCheckNodePort (kube-proxy answers
/// 503); the load balancer stops sending to it `check_interval_ns x
/// unhealthy_threshold` after the run starts (time 0 is when the endpoints
/// took their places). With Cluster, every node is healthy.
#[derive(Clone, Debug, PartialEq)]
pub struct LbParams {
    /// Node choice.
    pub policy: LbPolicy,
    /// Health check interval [ns].
    pub check_interval_ns: u64,
    /// Failed checks before a node is taken out.
    pub unhealthy_threshold: u32,
    /// Passed checks before a node is put back (a changing cluster's).
    pub healthy_threshold: u32,
}

impl Default for LbParams {
    fn default() -> Self {
        LbParams {
            policy: LbPolicy::Random,
            check_interval_ns: 5_000_000_000,
            unhealthy_threshold: 2,
            healthy_threshold: 2,
        }
    }
}

/// Per-flow results.
#[derive(Clone, Debug)]
pub struct FlowStats {
    /// Flow name.
    pub name: String,
    /// Requests issued.
    pub requests: u64,
    /// Requests answered in time.
    pub completed: u64,
    /// Failed requests by reason ([`crate::traffic::Failure::ALL`] order).
    pub failures: [u64; FAILURES],
    /// Latency of completed requests, request sent to response received.
    pub latency: Latency,
    /// Time per hop kind ([`crate::datapath::HopKind::ALL`] order) [ns].
    pub hops: [Tally; HOP_KINDS],
    /// Connections opened (TCP handshakes started).
    pub connections: u64,
    /// DNS questions the clients' resolvers sent (A and AAAA counted
    /// apart; resent ones too).
    pub dns_questions: u64,
    /// Messages dropped at a full queue (NIC, softirq backlog) and sent again.
    pub retransmits: u64,
    /// Of those, dropped at a node's full softirq backlog.
    pub cpu_drops: u64,
    /// Of those, dropped at a node NIC's full transmit queue.
    pub nic_drops: u64,
    /// First-packet cost on the first node a new connection meets (the
    /// client's node, or the node port's node): the proxy's lookup plus
    /// conntrack entry creation [ns], one value per connection.
    pub first_packet: Latency,
    /// When the flow's first request was issued [ns].
    pub first_ns: u64,
    /// When the flow's last request ended (answered or failed) [ns].
    pub last_ns: u64,
    /// Completions, failures and latency percentiles per interval.
    pub series: Vec<IntervalRow>,
    /// Failures per interval by reason: (interval start [ns], reason, count).
    pub failure_series: Vec<(u64, crate::traffic::Failure, u32)>,
    /// Whether the flow stopped issuing requests at the simulated horizon
    /// ([`emu_engine::HORIZON_NS`]) before its `requests` or `duration` ran out.
    pub stopped_at_horizon: bool,
}

impl FlowStats {
    /// Counts a request answered at `now_ns` after `latency_ns`.
    pub(crate) fn complete(&mut self, series: &mut series::Series, now_ns: u64, latency_ns: u64) {
        self.completed += 1;
        self.latency.record(latency_ns);
        self.last_ns = now_ns;
        series.completed(now_ns, latency_ns);
    }

    /// Counts a request failed at `now_ns` for `why`.
    pub(crate) fn fail(&mut self, series: &mut series::Series, now_ns: u64, why: crate::traffic::Failure) {
        self.failures[why as usize] += 1;
        self.last_ns = now_ns;
        series.failed(now_ns, why);
    }
}

impl FlowStats {
    /// Failed requests, all reasons.
    pub fn failed(&self) -> u64 {
        self.failures.iter().sum()
    }

    /// Completed requests per second over the flow's active window, from
    /// its first request issued to its last request ended.
    pub fn throughput_rps(&self) -> f64 {
        let window = self.last_ns.saturating_sub(self.first_ns);
        if window == 0 {
            0.0
        } else {
            self.completed as f64 * 1e9 / window as f64
        }
    }
}

/// Everything a run measured.
#[derive(Clone, Debug)]
pub struct Results {
    /// Per flow, in scenario order.
    pub flows: Vec<FlowStats>,
    /// Requests received per endpoint: `endpoint_hits[service_port][i]` for
    /// endpoint `i` of that Service port (DNS queries included for kube-dns).
    pub endpoint_hits: Vec<Vec<u64>>,
    /// Requests by (flow, server pod, source address the server saw).
    pub sources: BTreeMap<(u32, PodId, Ipv4), u64>,
    /// Requests beyond the first [`MAX_SOURCES`] distinct (flow, server pod,
    /// source) triples, by (flow, server pod, source kind).
    pub sources_overflow: BTreeMap<(u32, PodId, &'static str), u64>,
    /// What the proxy mode programs on every node: (name, count) rows.
    pub proxy_counts: Vec<(&'static str, u64)>,
    /// Conntrack table size per node.
    pub conntrack_max: u32,
    /// Most conntrack entries any node held at once.
    pub conntrack_peak: u32,
    /// New flows' packets dropped because a conntrack table was full.
    pub conntrack_drops: u64,
    /// Conntrack entries evicted to make room (early drop).
    pub conntrack_early_drops: u64,
    /// Most messages waiting at any node's CPU or NIC at once.
    pub max_queue: u32,
    /// Events handled.
    pub events: u64,
    /// Simulated time at the end [ns].
    pub end_ns: u64,
    /// What the control plane measured (a changing cluster only).
    pub control: Option<ControlResults>,
    /// Per NetworkPolicy (in `Cluster::policies` order): what it decided.
    pub policy_counts: Vec<policy::PolicyCounts>,
}

/// What a server is, for accounting its time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ServerKind {
    /// An application pod's server (`queue` and `server` hops).
    App,
    /// A CoreDNS pod (inside the `dns` hop).
    Dns,
    /// An ingress controller pod (`ingress_queue` and `ingress` hops).
    Ingress,
    /// A node's NodeLocal DNSCache (inside the `dns` hop).
    DnsCache,
}

impl ServerKind {
    /// Its name in a trace.
    pub(crate) fn name(self) -> &'static str {
        match self {
            ServerKind::App => "app",
            ServerKind::Ingress => "ingress controller",
            ServerKind::Dns => "coredns",
            ServerKind::DnsCache => "node-local-dns",
        }
    }
}

/// The engine's [`Slab`] keyed by a typed id (the engine's keys are bare
/// `u32`s; the ids wrap them here, at the models' boundary).
pub(crate) struct Keyed<K, T> {
    slab: Slab<T>,
    key: std::marker::PhantomData<K>,
}

/// An id that is a slab key.
pub(crate) trait SlabKey: Copy {
    /// The id of slab key `k`.
    fn of_key(k: u32) -> Self;
    /// Its slab key.
    fn key(self) -> u32;
}

impl SlabKey for ConnId {
    #[inline]
    fn of_key(k: u32) -> Self {
        ConnId::new(k)
    }
    #[inline]
    fn key(self) -> u32 {
        self.get()
    }
}

impl SlabKey for ReqId {
    #[inline]
    fn of_key(k: u32) -> Self {
        ReqId::new(k)
    }
    #[inline]
    fn key(self) -> u32 {
        self.get()
    }
}

impl<K: SlabKey, T> Keyed<K, T> {
    fn new() -> Self {
        Keyed { slab: Slab::new(), key: std::marker::PhantomData }
    }
    /// Stores `value` under a free id.
    #[inline]
    pub(crate) fn insert(&mut self, value: T) -> K {
        K::of_key(self.slab.insert(value))
    }
    /// Takes the record of `k` out; its id may be reused.
    #[inline]
    pub(crate) fn remove(&mut self, k: K) -> T {
        self.slab.remove(k.key())
    }
    /// The record of `k`.
    #[inline]
    pub(crate) fn get(&self, k: K) -> &T {
        self.slab.get(k.key())
    }
    /// The record of `k`, if it is still there.
    #[inline]
    pub(crate) fn try_get(&self, k: K) -> Option<&T> {
        self.slab.try_get(k.key())
    }
    /// Starts loading the record of `k` into the cache (a hint).
    #[inline]
    pub(crate) fn prefetch(&self, k: K) {
        self.slab.prefetch(k.key());
    }
    /// The live records with their ids.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (K, &T)> {
        self.slab.iter().map(|(k, v)| (K::of_key(k), v))
    }
    /// The record of `k`, to change.
    #[inline]
    pub(crate) fn get_mut(&mut self, k: K) -> &mut T {
        self.slab.get_mut(k.key())
    }
}

pub(crate) struct ServerRt {
    fifo: Fifo,
    dist: Dist,
    rng: Stream,
    kind: ServerKind,
}

/// The ingress controller's own work: an L7 proxy per request.
///
/// | parameter | default | source |
/// |---|---|---|
/// | `service_time` | `const(100us)` | estimate, not validated: nginx parsing, routing and proxying one small HTTP request |
/// | `concurrency` | 2 per controller pod | one nginx worker per core on a 2-vCPU node; each worker is a single CPU |
#[derive(Clone, Debug, PartialEq)]
pub struct IngressParams {
    /// Work per request [ns distribution].
    pub service_time: Dist,
    /// Requests one controller pod works on at once.
    pub concurrency: u32,
}

impl Default for IngressParams {
    fn default() -> Self {
        IngressParams { service_time: Dist::Constant(100_000), concurrency: 2 }
    }
}

pub(crate) struct FlowRt {
    flow: Flow,
    rng: Stream,
    issued: u64,
    limit: u64,
    end_ns: u64,
    dns: Option<DnsPlan>,
    /// Interned ids of the DNS plan's query names (cache keys).
    dns_ids: Vec<u32>,
    /// The flow's time series in the making.
    series: series::Series,
    /// Pending timeouts (deadline, request, generation), in deadline order.
    timeouts: std::collections::VecDeque<(u64, ReqId, u32)>,
    /// Whether a FlowTimeout event is pending for the front of `timeouts`.
    timer_armed: bool,
    /// When each of its connections was opened [ns] (only with a
    /// `max_connection_age`).
    opened: HashMap<ConnId, u64>,
    /// Idle kept-alive connections per client index.
    idle: IdlePool,
    stats: FlowStats,
}

/// A flow's idle kept-alive connections: a stack per client (the last to
/// go idle is the next reused). A closed loop's slot `s` is client
/// `s % clients`, so its clients are the first `min(slots, clients)` and
/// their stacks sit in a vector; an open loop draws any client, and its
/// stacks are in a map. Reusing a connection is on the path of most
/// requests: the vector spares the map's hashing and its two cache lines.
pub(crate) enum IdlePool {
    /// Stacks of clients `0..`, indexed by client.
    Slots(Vec<Vec<ConnId>>),
    /// Stacks of the clients that had a connection.
    Drawn(HashMap<ClientId, Vec<ConnId>>),
}

impl IdlePool {
    /// The pool of a flow arriving as `arrivals` among `clients` clients.
    pub(crate) fn new(arrivals: &Arrivals, clients: u32) -> IdlePool {
        match arrivals {
            Arrivals::Closed { clients: slots, .. } => {
                IdlePool::Slots(vec![Vec::new(); (*slots).min(clients) as usize])
            }
            Arrivals::Open { .. } => IdlePool::Drawn(HashMap::default()),
        }
    }

    /// Takes `client`'s most recently idle connection.
    pub(crate) fn pop(&mut self, client: ClientId) -> Option<ConnId> {
        match self {
            IdlePool::Slots(v) => v.get_mut(client.index()).and_then(Vec::pop),
            IdlePool::Drawn(m) => m.get_mut(&client).and_then(Vec::pop),
        }
    }

    /// Puts `conn`, now idle, on `client`'s stack.
    pub(crate) fn push(&mut self, client: ClientId, conn: ConnId) {
        match self {
            IdlePool::Slots(v) => v[client.index()].push(conn),
            IdlePool::Drawn(m) => m.entry(client).or_default().push(conn),
        }
    }
}

impl FlowRt {
    fn clients(&self) -> u32 {
        flows::client_count(&self.flow.client)
    }

    /// The client of closed-loop slot `slot`.
    fn slot_client(&self, slot: u32) -> u32 {
        slot % self.clients()
    }
}

/// The model: the cluster plus all run-time state.
pub struct World<'c> {
    pub(crate) cluster: &'c Cluster,
    pub(crate) params: Params,
    pub(crate) proxy: Proxy,
    /// Every node's CPU, NIC and conntrack table.
    pub(crate) nodes: Vec<crate::node::NodeQueues>,
    /// Each node's conntrack table (apart from the queues: see
    /// [`crate::node::NodeQueues`]).
    pub(crate) conntrack: Vec<crate::node::Conntrack>,
    /// The time of the event being handled [ns].
    pub(crate) now_ns: u64,
    /// Session affinity: (node, Service port, client address) -> (endpoint,
    /// last use [ns]). Probed only.
    pub(crate) affinity: HashMap<(NodeId, SpId, Ipv4), (EpId, u64)>,
    /// Round-robin cursor of each LoadBalancer Service's load balancer.
    pub(crate) lb_cursor: HashMap<SvcId, u32>,
    /// Nodes with a local endpoint, per Service port (load balancer health).
    pub(crate) healthy: HashMap<SpId, Vec<NodeId>>,
    /// Round-robin cursor per (ingress controller pod, backend Service port).
    pub(crate) upstream_rr: HashMap<(PodId, SpId), u32>,
    /// NodeLocal DNSCache: (node, name id) -> expiry [ns].
    pub(crate) dns_cache: HashMap<(NodeId, u32), u64>,
    /// CoreDNS's `cache` of forwarded answers: (CoreDNS server, name id)
    /// -> expiry [ns].
    pub(crate) upstream_cache: HashMap<(ServerId, u32), u64>,
    /// Each client pod's long-lived DNS socket (`[dns] persistent_socket`):
    /// the kube-dns endpoint its conntrack entry DNATs to, and its last use
    /// [ns]. Probed, and pruned by kube-proxy's conntrack cleanup.
    pub(crate) dns_sockets: HashMap<PodId, (EpId, u64)>,
    /// The cache server of each node, created on first use.
    pub(crate) cache_servers: HashMap<NodeId, ServerId>,
    pub(crate) flows: Vec<FlowRt>,
    pub(crate) servers: Vec<ServerRt>,
    pub(crate) server_index: HashMap<(PodId, u16, Protocol), ServerId>,
    /// The endpoints of kube-dns and of the ingress controller's Service.
    special_servers: HashMap<(PodId, u16, Protocol), ServerKind>,
    server_specs: HashMap<(PodId, u16), usize>,
    server_defs: Vec<Server>,
    pub(crate) conns: Keyed<ConnId, run::Conn>,
    pub(crate) reqs: Keyed<ReqId, run::Req>,
    /// The legs of the open connections.
    pub(crate) legs: legs::ConnLegs,
    /// What each open connection leaves to add up when it closes (or the
    /// run ends): requests it brought to its endpoint, walks of its legs,
    /// requests its server received (for `sources`).
    pub(crate) conn_counts: Vec<walk::ConnCounts>,
    pub(crate) next_gen: u32,
    /// Pending events other than timeouts; at zero the run is over.
    pub(crate) live: u64,
    pub(crate) endpoint_hits: Vec<Vec<u64>>,
    pub(crate) sources: HashMap<(u32, PodId, Ipv4), u64>,
    /// Requests beyond `sources`' first `MAX_SOURCES` keys, by (flow,
    /// server pod, source kind); sorted into `Results` at the end.
    pub(crate) sources_overflow: HashMap<(u32, PodId, &'static str), u64>,
    /// How many triples `sources` keeps: `MAX_SOURCES` (tests lower it).
    pub(crate) max_sources: usize,
    /// The cluster as it is now: pods' places, endpoint tables, what each
    /// node's rules reflect.
    pub(crate) state: live::Live,
    /// Whether any flow has a `max_connection_age` (connections' opening
    /// times are kept only then).
    pub(crate) aged_flows: bool,
    /// The control plane; `None` in a static run.
    pub(crate) control: Option<Box<control::Control>>,
    /// What each NetworkPolicy decided.
    pub(crate) policy_counts: Vec<policy::PolicyCounts>,
    /// The recorder of `emu trace`; `None` in every other run.
    pub(crate) trace: Option<Box<trace::Tracer>>,
}

/// Highest open-loop rate [requests/s]: one per nanosecond, the clock's
/// resolution.
pub const MAX_RATE_PER_S: f64 = 1e9;

/// Most closed-loop clients in all flows, and external clients of one flow
/// (emu's limit: each closed-loop client keeps an event pending).
pub const MAX_CLIENTS: u64 = 10_000_000;

fn err(flow: &Flow, field: &str, message: String) -> BuildError {
    BuildError { origin: flow.origin.clone(), field: field.into(), message }
}

impl<'c> World<'c> {
    /// Checks `flows` and `servers` against `cluster` and prepares a run.
    pub fn new(
        cluster: &'c Cluster,
        params: Params,
        flows: Vec<Flow>,
        servers: Vec<Server>,
    ) -> Result<World<'c>, BuildError> {
        crate::params::check(&params, cluster).map_err(|e| BuildError {
            origin: crate::cluster::Origin { file: "<parameters>".into(), line: 0, path: e.key },
            field: String::new(),
            message: e.message,
        })?;
        let proxy = Proxy::new(cluster, &params.proxy, params.seed);
        let mut special_servers = HashMap::default();
        for (svc, kind) in [(cluster.dns_service, ServerKind::Dns), (cluster.ingress_service, ServerKind::Ingress)] {
            for &sp in svc.iter().flat_map(|&s| &cluster.services[s.index()].ports) {
                let sp = &cluster.service_ports[sp.index()];
                for e in &sp.endpoints {
                    special_servers.insert((e.pod, e.port, sp.protocol), kind);
                }
            }
        }
        let node_params = params.node.clone();
        let mut rts = Vec::with_capacity(flows.len());
        let mut names: HashMap<String, u32> = HashMap::default();
        let mut all_clients = 0u64;
        let mut client_sets = HashMap::default();
        for (i, f) in flows.into_iter().enumerate() {
            rts.push(flows::flow_rt(cluster, &params, i, f, &mut names, &mut all_clients, &mut client_sets)?);
        }
        let mut server_specs = HashMap::default();
        for (i, s) in servers.iter().enumerate() {
            for &pod in &s.pods {
                server_specs.insert((pod, s.port), i);
            }
        }
        let endpoint_hits = cluster.service_ports.iter().map(|sp| vec![0; sp.endpoints.len()]).collect();
        check_clients_stay(cluster, &params.changes, &rts)?;
        let control = (!params.changes.is_empty()).then(|| {
            Box::new(control::Control::new(
                cluster,
                params.changes.clone(),
                params.control.clone(),
                params.sync.clone(),
                params.proxy.mode,
                params.seed,
            ))
        });
        let aged_flows = rts.iter().any(|f| f.flow.max_connection_age_ns.is_some());
        Ok(World {
            policy_counts: vec![[0; 4]; cluster.policies.list.len()],
            aged_flows,
            state: live::Live::new(cluster),
            control,
            cluster,
            params,
            proxy,
            nodes: vec![crate::node::NodeQueues::new(&node_params); cluster.nodes.len()],
            conntrack: vec![crate::node::Conntrack::for_node(&node_params); cluster.nodes.len()],
            now_ns: 0,
            affinity: HashMap::default(),
            lb_cursor: HashMap::default(),
            healthy: HashMap::default(),
            upstream_rr: HashMap::default(),
            dns_cache: HashMap::default(),
            upstream_cache: HashMap::default(),
            cache_servers: HashMap::default(),
            dns_sockets: HashMap::default(),
            flows: rts,
            servers: Vec::new(),
            server_index: HashMap::default(),
            special_servers,
            server_specs,
            server_defs: servers,
            conns: Keyed::new(),
            reqs: Keyed::new(),
            legs: legs::ConnLegs::default(),
            conn_counts: Vec::new(),
            next_gen: 0,
            live: 0,
            endpoint_hits,
            sources: HashMap::default(),
            sources_overflow: HashMap::default(),
            max_sources: MAX_SOURCES,
            trace: None,
        })
    }

    /// The base pod whose containers, ports and labels `pod` has (itself,
    /// unless a changing cluster created it).
    #[inline]
    /// Where pod `pod` sends from now: its own namespace on its node, or
    /// the node's (hostNetwork).
    pub(crate) fn place_of(&self, pod: PodId) -> Place {
        let node = self.state.loc[pod.index()].node;
        if self.spec_pod(pod).host_network {
            Place::Host { node }
        } else {
            Place::Pod { pod, node }
        }
    }

    /// The path from `from` to pod `pod` on `node`: into its namespace, or
    /// to its node's host stack (hostNetwork).
    pub(crate) fn path_to(&self, from: Place, pod: PodId, node: NodeId) -> Path {
        if self.spec_pod(pod).host_network {
            Path::ToHost { from, node }
        } else {
            Path::Route { from, to_pod: pod, to_node: node }
        }
    }

    pub(crate) fn spec_pod(&self, pod: PodId) -> &'c crate::cluster::Pod {
        let cl = self.cluster;
        match cl.pods.get(pod.index()) {
            Some(p) => p,
            None => &cl.pods[self.control.as_ref().expect("run-time pods").pods[pod.index()].proto.index()],
        }
    }

    /// The DNS plan of each flow that targets a name (`None` otherwise).
    pub fn dns_plans(&self) -> Vec<Option<&DnsPlan>> {
        self.flows.iter().map(|f| f.dns.as_ref()).collect()
    }

    /// The server on `pod`'s `port`, created on first use. Its random
    /// stream is keyed by (pod, port, protocol), not by creation order.
    pub(crate) fn server(&mut self, pod: PodId, port: u16, proto: Protocol) -> ServerId {
        // A CoreDNS pod's workers answer UDP and TCP queries alike: one pool.
        let (port, proto) =
            if self.serves(ServerKind::Dns, pod, port, proto) { (53, Protocol::Udp) } else { (port, proto) };
        if let Some(&s) = self.server_index.get(&(pod, port, proto)) {
            return s;
        }
        // A pod the changing cluster created serves as the pod it is a copy
        // of (its workload's template): the same `[[servers]]` entry, or
        // CoreDNS's, or the ingress controller's.
        let like = self.proto_of(pod);
        let (dist, servers, queue, kind) = if let Some(&i) = self.server_specs.get(&(like, port)) {
            let d = &self.server_defs[i];
            (d.service_time, d.concurrency, d.queue_limit, ServerKind::App)
        } else if self.serves(ServerKind::Dns, pod, port, proto) {
            (self.params.dns.service_time, self.params.dns.concurrency, u32::MAX, ServerKind::Dns)
        } else if self.serves(ServerKind::Ingress, pod, port, proto) {
            (self.params.ingress.service_time, self.params.ingress.concurrency, u32::MAX, ServerKind::Ingress)
        } else {
            (Dist::Constant(0), 0, u32::MAX, ServerKind::App)
        };
        let id = ((pod.get() as u64) << 20) | ((port as u64) << 2) | proto as u64;
        let s = ServerId::from_index(self.servers.len());
        self.servers.push(ServerRt {
            fifo: Fifo::new(servers, queue),
            dist,
            rng: Stream::new(self.params.seed, SERVER_STREAM, id),
            kind,
        });
        self.server_index.insert((pod, port, proto), s);
        s
    }

    /// Whether `pod`'s `port` is an endpoint of kube-dns (`Dns`) or of the
    /// ingress controller's Service (`Ingress`): a hash probe, built once.
    fn serves(&self, kind: ServerKind, pod: PodId, port: u16, proto: Protocol) -> bool {
        self.special_servers.get(&(self.proto_of(pod), port, proto)) == Some(&kind)
    }

    /// The base cluster's pod that `pod` is (itself), or that it is a
    /// run-time copy of.
    fn proto_of(&self, pod: PodId) -> PodId {
        if pod.index() < self.cluster.pods.len() {
            return pod;
        }
        self.control.as_ref().expect("run-time pods").pods[pod.index()].proto
    }

    /// Node `node`'s NodeLocal DNSCache server, created on first use.
    pub(crate) fn cache_server(&mut self, node: NodeId) -> ServerId {
        if let Some(&s) = self.cache_servers.get(&node) {
            return s;
        }
        let d = &self.params.dns;
        let s = ServerId::from_index(self.servers.len());
        // Stream ids above every (pod, port, protocol) key.
        let id = (1u64 << 60) | node.get() as u64;
        self.servers.push(ServerRt {
            fifo: Fifo::new(d.cache_concurrency, u32::MAX),
            dist: d.cache_service_time,
            rng: Stream::new(self.params.seed, SERVER_STREAM, id),
            kind: ServerKind::DnsCache,
        });
        self.cache_servers.insert(node, s);
        s
    }

    /// Schedules every flow's first request into `sched`.
    pub fn start(&mut self, sched: &mut emu_engine::Scheduler<Ev>) {
        for (i, f) in self.flows.iter_mut().enumerate() {
            let start = emu_engine::SimTime(f.flow.start_ns);
            match &f.flow.arrivals {
                Arrivals::Open { .. } => {
                    self.live += 1;
                    sched.schedule_at(start, Ev::Arrival { flow: i as u32 });
                }
                Arrivals::Closed { clients, .. } => {
                    for slot in 0..*clients {
                        self.live += 1;
                        sched.schedule_at(start, Ev::ClientReady { flow: i as u32, slot });
                    }
                }
            }
        }
        self.start_control(sched);
    }

    /// Ends the run and hands back what it measured.
    pub fn finish(mut self, sched: &emu_engine::Scheduler<Ev>) -> Results {
        // A run stopped early (`emu trace`) leaves messages between hops.
        let walking: Vec<ReqId> = sched
            .pending_events()
            .filter_map(|e| if let Ev::HopArrive { req } = *e { Some(req) } else { None })
            .collect();
        for req in walking {
            self.settle_partial_walk(req);
        }
        let open: Vec<ConnId> = self.conns.iter().map(|(c, _)| c).collect();
        for c in open {
            self.settle(c);
        }
        Results {
            flows: self
                .flows
                .into_iter()
                .map(|f| {
                    let mut st = f.stats;
                    (st.series, st.failure_series) = f.series.finish();
                    st.stopped_at_horizon = f.issued < f.limit && f.end_ns == emu_engine::HORIZON_NS;
                    st
                })
                .collect(),
            endpoint_hits: self.endpoint_hits,
            sources: self.sources.into_iter().collect(),
            sources_overflow: self.sources_overflow.into_iter().collect(),
            proxy_counts: self.proxy.counts(),
            conntrack_max: self.params.node.conntrack_max(),
            conntrack_peak: self.conntrack.iter().map(|c| c.peak).max().unwrap_or(0),
            conntrack_drops: self.conntrack.iter().map(|c| c.drops).sum(),
            conntrack_early_drops: self.conntrack.iter().map(|c| c.early_drops).sum(),
            max_queue: self.nodes.iter().map(|n| n.cpu.max_queue().max(n.nic.max_queue())).max().unwrap_or(0),
            events: sched.handled(),
            end_ns: sched.now().as_nanos(),
            control: self.control.as_ref().map(|c| c.results(self.cluster, &self.state)),
            policy_counts: self.policy_counts,
        }
    }
}

/// Refuses changes that would delete or move a flow's client pods (a
/// flow's clients are fixed at time 0: emu does not follow a client to its
/// replacement).
fn check_clients_stay(
    cluster: &Cluster,
    changes: &[crate::dynamics::Change],
    flows: &[FlowRt],
) -> Result<(), BuildError> {
    use crate::dynamics::ChangeKind;
    if changes.is_empty() {
        return Ok(());
    }
    let mut client_of: HashMap<PodId, &str> = HashMap::default();
    for f in flows {
        if let Client::Pods(pods) = &f.flow.client {
            for &p in pods.iter() {
                client_of.entry(p).or_insert(&f.flow.name);
            }
        }
    }
    for c in changes {
        let is_client = |p: &PodId| client_of.contains_key(p);
        let hit: Option<PodId> = match &c.kind {
            ChangeKind::Rollout(w) => cluster.workloads[*w as usize].pods.iter().copied().find(is_client),
            ChangeKind::Scale { workload, replicas } => {
                let pods = &cluster.workloads[*workload as usize].pods;
                pods.iter().skip(*replicas as usize).copied().find(is_client)
            }
            ChangeKind::DeletePod(p) => Some(*p).filter(is_client),
            ChangeKind::DrainNode(n) | ChangeKind::FailNode(n) => (0..cluster.pods.len())
                .map(PodId::from_index)
                .find(|p| cluster.pods[p.index()].node == *n && is_client(p)),
            ChangeKind::RecoverNode(_) | ChangeKind::CreateServices(_) => None,
        };
        if let Some(pod) = hit {
            return Err(BuildError {
                origin: c.origin.clone(),
                field: c.kind.key().into(),
                message: format!(
                    "it would delete or move pod {}, a client of flow `{}`: a flow's clients are fixed at time 0 (change other pods, or pin the clients elsewhere)",
                    cluster.pod_ref(pod),
                    client_of[&pod]
                ),
            });
        }
    }
    Ok(())
}

/// Builds the world, runs it to the end and returns the results.
pub fn simulate(
    cluster: &Cluster,
    params: Params,
    flows: Vec<Flow>,
    servers: Vec<Server>,
) -> Result<Results, BuildError> {
    simulate_observed(cluster, params, flows, servers, &mut |_, _, _| {})
}

/// As [`simulate`], calling `progress(simulated_ns, events, requests)`
/// every million events, `requests` being those issued so far (for
/// progress bars; the run is the same event for event).
pub fn simulate_observed(
    cluster: &Cluster,
    params: Params,
    flows: Vec<Flow>,
    servers: Vec<Server>,
    progress: &mut dyn FnMut(u64, u64, u64),
) -> Result<Results, BuildError> {
    let mut world = World::new(cluster, params, flows, servers)?;
    let mut sched = emu_engine::Scheduler::new();
    world.start(&mut sched);
    while !sched.is_done() {
        sched.run_steps(&mut world, 1_000_000);
        let issued = world.flows.iter().map(|f| f.issued).sum();
        progress(sched.now().as_nanos(), sched.handled(), issued);
    }
    Ok(world.finish(&sched))
}

/// As [`simulate`], following request `want` hop by hop (`emu trace`);
/// the run stops when that request ends. The request's walk is the one
/// [`simulate`] runs: the recorder only watches.
pub fn simulate_traced(
    cluster: &Cluster,
    params: Params,
    flows: Vec<Flow>,
    servers: Vec<Server>,
    want: TraceRequest,
) -> Result<(Results, Trace), BuildError> {
    let name = flows.get(want.flow as usize).map(|f| f.name.clone()).unwrap_or_default();
    let mut world = World::new(cluster, params, flows, servers)?;
    world.trace = Some(Box::new(trace::Tracer::new(want, name)));
    let mut sched = emu_engine::Scheduler::new();
    world.start(&mut sched);
    sched.run(&mut world);
    let tracer = world.trace.take().expect("the tracer stays");
    Ok((world.finish(&sched), tracer.finish()))
}

#[cfg(test)]
mod tests;
