//! `emu trace`: one request's walk, recorded by the code that runs it.
//!
//! The world holds an optional [`Tracer`] (`None` in every ordinary run:
//! each hook is one test of that `Option`, and the walk's loop tests a
//! local). The hooks sit where the simulation decides and times things:
//! the walk's hops (`walk.rs`), the proxy's decision and the connection's
//! NAT and conntrack entries (`connect.rs`), the DNS exchange
//! (`resolve.rs`), the servers and the request's end (`run.rs`). Names and
//! addresses are worked out once per message, when its leg is built, from
//! the connection record the run keeps: the interfaces from the leg's hops
//! ([`crate::datapath::iface`]), the addresses from the connection's
//! client, the Service address it was sent to, the endpoint its proxy
//! chose, the source address its server sees, and the node whose netfilter
//! rewrote it.
//!
//! Client ports are labels: emu does not model ephemeral ports, so a
//! connection's client port is derived from its record's index and role,
//! from 32768 up (Linux's default `ip_local_port_range` starts there);
//! records are reused, so ports may repeat across requests.

use super::run::{external_ip, Conn, Phase, LOCALHOST};
use super::World;
use crate::addr::Ipv4;
use crate::datapath::iface::{self, End};
use crate::datapath::{Cni, Hop, HopKind, Path, Place};
use crate::ids::{ConnId, NodeId, PodId, ReqId, SpId};
use crate::proxy::{Dnat, Entry, Mode, Proxy};
use crate::traffic::{Failure, Target};

/// Which request to trace: the `nth` (from 1) request flow `flow` issues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceRequest {
    /// Flow index.
    pub flow: u32,
    /// Its request number, from 1.
    pub nth: u64,
}

/// An address and port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sock {
    /// IPv4 address.
    pub ip: Ipv4,
    /// Port.
    pub port: u16,
}

impl std::fmt::Display for Sock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.ip, self.port)
    }
}

/// What happened at an instant (an event) of a traced request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A message leaves its sender.
    Send,
    /// The proxy's (kube-proxy's, or its eBPF replacement's) decision.
    Proxy,
    /// A destination rewrite (DNAT, or the socket-layer translation).
    Dnat,
    /// A source rewrite (SNAT, MASQUERADE).
    Snat,
    /// A reply's rewrite back (conntrack's reverse NAT).
    ReverseNat,
    /// A conntrack entry created or matched.
    Conntrack,
    /// NetworkPolicy's verdict.
    Policy,
    /// A DNS question or answer.
    Dns,
    /// A message dropped (a full queue, a refusal, a lost node).
    Drop,
    /// The request failed (its reason).
    Failed,
}

impl EventKind {
    /// Its name in the trace.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Send => "send",
            EventKind::Proxy => "proxy",
            EventKind::Dnat => "dnat",
            EventKind::Snat => "snat",
            EventKind::ReverseNat => "reverse_nat",
            EventKind::Conntrack => "conntrack",
            EventKind::Policy => "policy",
            EventKind::Dns => "dns",
            EventKind::Drop => "drop",
            EventKind::Failed => "failed",
        }
    }
}

/// One hop a message crossed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HopStep {
    /// The hop's kind (a `hops.csv` row).
    pub kind: HopKind,
    /// The node it is on (`None` outside the cluster).
    pub node: Option<String>,
    /// The pod whose namespace or veth it is in.
    pub pod: Option<String>,
    /// The interface crossed (see [`crate::datapath::iface`]).
    pub iface: String,
    /// The receiving node of a wire between nodes.
    pub to: Option<String>,
    /// The packet's source as it crosses.
    pub src: Sock,
    /// The packet's destination as it crosses.
    pub dst: Sock,
    /// Waiting for the resource (a CPU or NIC queue) [ns].
    pub queue_ns: u64,
    /// The resource's service (CPU work, serialization) [ns].
    pub service_ns: u64,
    /// A first packet's extra work there (rule walk, conntrack entry,
    /// policy checks) [ns].
    pub work_ns: u64,
    /// The hop's latency [ns].
    pub latency_ns: u64,
}

/// What a step of the trace is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum What {
    /// A hop.
    Hop(HopStep),
    /// Time at a server: waiting for a worker, then its work.
    Server {
        /// `app`, `coredns`, `node-local-dns` or `ingress controller`.
        kind: &'static str,
        /// The server's node.
        node: String,
        /// Its pod (`None`: a node's DNS cache).
        pod: Option<String>,
        /// Waiting for a worker [ns].
        queue_ns: u64,
        /// Its work [ns].
        service_ns: u64,
    },
    /// Waiting before sending again: a retransmission timeout, a
    /// resolver's timeout, or a refusal's round trip.
    Wait {
        /// Why.
        reason: String,
    },
    /// Something at an instant.
    Event {
        /// What kind.
        kind: EventKind,
        /// Where (a node).
        node: Option<String>,
        /// What, in words.
        text: String,
    },
}

/// One step: from `at_ns` for `ns` (0 for an event).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// Start [ns of simulated time].
    pub at_ns: u64,
    /// Duration [ns].
    pub ns: u64,
    /// What.
    pub what: What,
}

/// How the traced request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Answered; its latency [ns] (issued to response received).
    Completed(u64),
    /// Failed for this reason.
    Failed(Failure),
    /// The flow never issued it (or the run ended first).
    NotIssued,
}

/// A traced request.
#[derive(Clone, Debug)]
pub struct Trace {
    /// The flow's name.
    pub flow: String,
    /// The request number, from 1.
    pub request: u64,
    /// When it was issued [ns].
    pub start_ns: u64,
    /// When it ended [ns].
    pub end_ns: u64,
    /// How.
    pub outcome: Outcome,
    /// Its steps, in time order.
    pub steps: Vec<Step>,
}

/// A hop of the message in flight, named and addressed in advance.
#[derive(Clone, Debug)]
struct Prepared {
    step: HopStep,
    /// Events right after the hop (the rewrites and conntrack at a node).
    after: Vec<(EventKind, String)>,
}

/// The recorder of one request's steps.
pub(crate) struct Tracer {
    want: TraceRequest,
    /// The request while it runs.
    pub(super) req: Option<ReqId>,
    hops: Vec<Prepared>,
    trace: Trace,
    /// When its message vanished at a lost node (nothing comes back).
    lost_at: Option<u64>,
    /// A message of several server jobs (a DNS message's questions): when
    /// its first job started; one server step covers them all.
    first_job: Option<u64>,
}

impl Tracer {
    /// A tracer for `want` of flow `name`.
    pub(crate) fn new(want: TraceRequest, name: String) -> Tracer {
        Tracer {
            want,
            req: None,
            hops: Vec::new(),
            lost_at: None,
            first_job: None,
            trace: Trace {
                flow: name,
                request: want.nth,
                start_ns: 0,
                end_ns: 0,
                outcome: Outcome::NotIssued,
                steps: Vec::new(),
            },
        }
    }

    /// Hop `pos` of the message in flight: from `at` on, `queue` waiting,
    /// then `service` + `work`, then `latency` [ns].
    pub(super) fn hop(&mut self, pos: u8, at: u64, queue: u64, service: u64, work: u64, latency: u64) {
        let Some(p) = self.hops.get(pos as usize) else { return };
        let mut step = p.step.clone();
        (step.queue_ns, step.service_ns, step.work_ns, step.latency_ns) = (queue, service, work, latency);
        let end = at + queue + service + work + latency;
        let node = step.node.clone();
        self.trace.steps.push(Step { at_ns: at, ns: end - at, what: What::Hop(step) });
        for (kind, text) in p.after.clone() {
            self.trace.steps.push(Step { at_ns: end, ns: 0, what: What::Event { kind, node: node.clone(), text } });
        }
    }

    fn push(&mut self, at_ns: u64, ns: u64, what: What) {
        self.trace.steps.push(Step { at_ns, ns, what });
    }

    /// The trace, once the run is over.
    pub(crate) fn finish(mut self) -> Trace {
        let end = self.trace.end_ns;
        if self.trace.outcome != Outcome::NotIssued {
            // Hops walked ahead of a timeout that cut them short, and the
            // step it cut.
            self.trace.steps.retain(|s| s.at_ns < end || (s.at_ns == end && s.ns == 0));
            for s in &mut self.trace.steps {
                if s.at_ns + s.ns > end {
                    s.ns = end - s.at_ns;
                    match &mut s.what {
                        What::Wait { reason } => reason.push_str(" (cut short: the request ended)"),
                        What::Server { service_ns, queue_ns, .. } => {
                            *queue_ns = (*queue_ns).min(s.ns);
                            *service_ns = s.ns - *queue_ns;
                        }
                        _ => {}
                    }
                }
            }
        }
        self.trace.steps.sort_by_key(|s| s.at_ns);
        self.trace
    }
}

/// How a connection's packets are addressed.
struct Addressing {
    /// The client's socket.
    client: Sock,
    /// The address the client sent to (a Service address, or the server).
    sent_to: Sock,
    /// The server's socket.
    server: Sock,
    /// The source the server sees (after SNAT).
    seen_src: Sock,
    /// The node whose netfilter (or eBPF program) translated it.
    nat_node: Option<NodeId>,
    /// Translated at `connect()` by a socket-layer program: the packet
    /// carries the server's address from the start.
    socket_lb: bool,
}

impl Addressing {
    /// A packet's (source, destination) going forward or `back`, before or
    /// after the translating node (`translated`).
    fn packet(&self, back: bool, translated: bool) -> (Sock, Sock) {
        match (back, translated) {
            // The socket-layer program translated at connect(): the
            // packets carry the backend's address both ways.
            (false, _) if self.socket_lb => (self.seen_src, self.server),
            (true, _) if self.socket_lb => (self.server, self.seen_src),
            (false, false) => (self.client, self.sent_to),
            (false, true) => (self.seen_src, self.server),
            (true, false) => (self.server, self.seen_src),
            (true, true) => (self.sent_to, self.client),
        }
    }
}

impl World<'_> {
    /// The tracer, when it follows `req`.
    #[inline]
    pub(super) fn tracing(&mut self, req: ReqId) -> Option<&mut Tracer> {
        self.trace.as_deref_mut().filter(|t| t.req == Some(req))
    }

    /// `namespace/name` of any pod, base or created at run time.
    pub(super) fn pod_key(&self, pod: PodId) -> String {
        let cl = self.cluster;
        if pod.index() < cl.pods.len() {
            return cl.pod_ref(pod);
        }
        let ctl = self.control.as_deref().expect("run-time pods");
        let (name, ns) = ctl.pod_name(cl, pod);
        format!("{}/{name}", cl.namespaces[ns as usize])
    }

    fn node_name(&self, node: NodeId) -> String {
        self.cluster.nodes[node.index()].name.clone()
    }

    /// Starts following `req` if it is the request asked for.
    pub(super) fn trace_issue(&mut self, req: ReqId, flow: u32, nth: u64, now: u64) {
        if let Some(t) = self.trace.as_deref_mut() {
            if t.want.flow == flow && t.want.nth == nth && t.req.is_none() {
                t.req = Some(req);
                t.trace.start_ns = now;
            }
        }
    }

    /// Records an event of `req` at `at`.
    pub(super) fn trace_event(&mut self, req: ReqId, at: u64, kind: EventKind, node: Option<NodeId>, text: String) {
        let node = node.map(|n| self.node_name(n));
        if let Some(t) = self.tracing(req) {
            t.push(at, 0, What::Event { kind, node, text });
        }
    }

    /// Records a wait of `req` from `at` for `ns`.
    pub(super) fn trace_wait(&mut self, req: ReqId, at: u64, ns: u64, reason: &str) {
        if let Some(t) = self.tracing(req) {
            t.push(at, ns, What::Wait { reason: reason.into() });
        }
    }

    /// Records `req`'s time at a server: from `arrived`, `queue` waiting
    /// and `service` working [ns].
    pub(super) fn trace_server(&mut self, req: ReqId, kind: &'static str, arrived: u64, queue: u64, service: u64) {
        let r = self.reqs.get(req);
        let jobs = r.jobs;
        if let Some(t) = self.tracing(req) {
            if jobs > 1 || t.first_job.is_some() {
                // One of several jobs: the step is written when the last ends.
                t.first_job.get_or_insert(arrived + queue);
                return;
            }
        }
        self.server_step(req, kind, arrived, queue, service);
    }

    /// The last job of `req`'s message ended at `now`: one server step from
    /// its arrival, queued until its first job started.
    pub(super) fn trace_jobs_done(&mut self, req: ReqId, kind: &'static str, now: u64) {
        let arrived = self.reqs.get(req).arrived.as_nanos();
        if let Some(first) = self.tracing(req).and_then(|t| t.first_job.take()) {
            self.server_step(req, kind, arrived, first - arrived, now - first);
        }
    }

    fn server_step(&mut self, req: ReqId, kind: &'static str, arrived: u64, queue: u64, service: u64) {
        let r = self.reqs.get(req);
        let c = self.conns.get(r.conn_of(r.phase));
        let node = match (c.server_pod, c.path) {
            (Some(p), _) => self.state.loc[p.index()].node,
            (None, Path::ToHost { node, .. }) => node,
            (None, _) => c.pnode,
        };
        let (node, pod) = (self.node_name(node), c.server_pod.map(|p| self.pod_key(p)));
        if let Some(t) = self.tracing(req) {
            t.push(arrived, queue + service, What::Server { kind, node, pod, queue_ns: queue, service_ns: service });
        }
    }

    /// Ends `req`'s trace at `now` with `outcome`; `true` if it was traced
    /// (the run may stop).
    pub(super) fn trace_end(&mut self, req: ReqId, now: u64, outcome: Outcome) -> bool {
        if self.tracing(req).is_none() {
            return false;
        }
        let r = self.reqs.get(req);
        let (phase, arrived) = (r.phase, r.arrived.as_nanos());
        let waiting = matches!(phase, Phase::AtServer | Phase::UpAtServer | Phase::DnsAtServer | Phase::DnsUpAtServer);
        if let (Outcome::Failed(_), true) = (outcome, waiting) {
            // Still queued at the server when the client gave up.
            let served = self.trace.as_deref().is_some_and(|t| {
                t.trace.steps.iter().any(|s| s.at_ns == arrived && matches!(s.what, What::Server { .. }))
            });
            let c = self.conns.get(r.conn_of(phase));
            if let (false, Some(sv)) = (served, c.server) {
                let kind = self.servers[sv.index()].kind.name();
                self.trace_server(req, kind, arrived, now - arrived, 0);
            }
        }
        let t = self.tracing(req).expect("followed");
        if let Some(lost) = t.lost_at.take() {
            let reason = "the message vanished at a lost node: nothing comes back".into();
            t.push(lost, now - lost, What::Wait { reason });
        }
        if let Outcome::Failed(why) = outcome {
            let text = format!("{} after {} ns", why.name(), now - t.trace.start_ns);
            t.push(now, 0, What::Event { kind: EventKind::Failed, node: None, text });
        }
        (t.trace.end_ns, t.trace.outcome, t.req) = (now, outcome, None);
        true
    }

    /// `req`'s message vanished at a lost node now.
    pub(super) fn trace_lost(&mut self, req: ReqId) {
        let now = self.now_ns;
        if let Some(t) = self.tracing(req) {
            t.lost_at = Some(now);
        }
        let text = "the message vanished at a lost node".to_string();
        self.trace_event(req, now, EventKind::Drop, None, text);
    }

    /// Names and addresses the hops of `leg`, the message of `phase` about
    /// to walk connection `conn` (`back`: server to client), and records
    /// its sending.
    pub(super) fn trace_walk(&mut self, req: ReqId, conn: ConnId, back: bool, phase: Phase, hops: &[Hop], now: u64) {
        let c = self.conns.get(conn);
        let a = self.addressing(req, conn, c);
        let cni = self.params.datapath.cni;
        let (near, far) = ends(c);
        let key = |p: PodId| self.pod_key(p);
        // Where the addresses change: after the translating node's CPU
        // pass (forward: its first; back: its last).
        let at_nat = |i: usize| hops[i].kind == HopKind::Cpu && hops[i].node.is_some() && hops[i].node == a.nat_node;
        let nat_pos =
            if back { (0..hops.len()).rev().find(|&i| at_nat(i)) } else { (0..hops.len()).find(|&i| at_nat(i)) };
        // The nodes holding a conntrack entry for the flow: a connection's
        // (`Conn::ct`), or a new DNS query's on both nodes (kept-alive
        // upstream connections and NOTRACK cache queries hold none here).
        let udp_query = matches!(phase, Phase::DnsQuery | Phase::DnsReply) && !matches!(c.path, Path::ToHost { .. });
        let ct_nodes = match (c.ct, udp_query && cni != Cni::Ebpf) {
            ([None, None], true) => [Some(c.pnode), c.server_pod.map(|p| self.state.loc[p.index()].node)],
            (ct, _) => ct,
        };
        let extra = self.reqs.get(req).walk.extra;
        let first = matches!(phase, Phase::Syn) || (phase == Phase::DnsQuery && extra != [0, 0]);
        let mut prepared = Vec::with_capacity(hops.len());
        for (i, h) in hops.iter().enumerate() {
            let x = iface::crossing(cni, h, near, far, back, &key);
            let translated = nat_pos.is_some_and(|p| i > p);
            let (src, dst) = a.packet(back, translated);
            let mut after = Vec::new();
            if h.kind == HopKind::Cpu && h.node.is_some() {
                let tracked = ct_nodes.contains(&h.node);
                after.extend(rewrites(&a, phase, back, first, Some(i) == nat_pos, tracked));
            }
            let step = HopStep {
                kind: h.kind,
                node: x.node.map(|n| self.node_name(n)),
                pod: x.pod.map(&key),
                iface: x.iface,
                to: x.to.map(|n| self.node_name(n)),
                src,
                dst,
                queue_ns: 0,
                service_ns: 0,
                work_ns: 0,
                latency_ns: 0,
            };
            prepared.push(Prepared { step, after });
        }
        let (src, dst) = a.packet(back, false);
        let bytes = self.reqs.get(req).walk.msg.bytes;
        let proto = if self.reqs.get(req).walk.msg.udp { "UDP" } else { "TCP" };
        let text = format!("{} {src} > {dst} ({proto}, {bytes} B payload)", phase_name(phase));
        let connect_lb = (a.socket_lb && (phase == Phase::Syn || (phase == Phase::DnsQuery && first))).then(|| {
            format!(
                "connect() to {} translated to {} by the socket-layer program: no per-packet NAT",
                a.sent_to, a.server
            )
        });
        if let Some(t) = self.tracing(req) {
            t.hops = prepared;
            if let Some(text) = connect_lb {
                t.push(now, 0, What::Event { kind: EventKind::Dnat, node: None, text });
            }
            t.push(now, 0, What::Event { kind: EventKind::Send, node: None, text });
        }
    }
}

/// The conntrack work and the rewrites at a node's CPU pass: its
/// conntrack entry (when the node tracks the flow), named by the tuple of
/// the packet as it first reached that node (the original tuple at the
/// translating node, the translated one after it), then the translating
/// node's rewrites (`nat_here`).
fn rewrites(
    a: &Addressing,
    phase: Phase,
    back: bool,
    first: bool,
    nat_here: bool,
    tracked: bool,
) -> Vec<(EventKind, String)> {
    let mut out = Vec::new();
    if tracked {
        let udp = matches!(phase, Phase::DnsQuery | Phase::DnsReply);
        let (src, dst) = if nat_here && !a.socket_lb { (a.client, a.sent_to) } else { (a.seen_src, a.server) };
        let entry = format!(
            "{} src={} dst={} sport={} dport={}",
            if udp { "udp" } else { "tcp" },
            src.ip,
            dst.ip,
            src.port,
            dst.port
        );
        let ct = match (back, first) {
            (true, _) => format!("reply matches entry {entry}"),
            (false, true) => format!("new entry {entry}"),
            (false, false) => format!("established entry {entry}"),
        };
        out.push((EventKind::Conntrack, ct));
    }
    if nat_here && !a.socket_lb {
        if !back {
            let how = if first || !tracked { "" } else { " (by the conntrack entry)" };
            if a.sent_to != a.server {
                out.push((EventKind::Dnat, format!("dst {} > {}{how}", a.sent_to, a.server)));
            }
            if a.seen_src.ip != a.client.ip {
                out.push((EventKind::Snat, format!("MASQUERADE src {} > {}{how}", a.client, a.seen_src)));
            }
        } else {
            let mut parts = Vec::new();
            if a.sent_to != a.server {
                parts.push(format!("src {} > {}", a.server, a.sent_to));
            }
            if a.seen_src.ip != a.client.ip {
                parts.push(format!("dst {} > {}", a.seen_src, a.client));
            }
            if !parts.is_empty() {
                out.push((EventKind::ReverseNat, parts.join(", ")));
            }
        }
    }
    out
}

impl World<'_> {
    /// How connection `c` (of `req`) is addressed.
    fn addressing(&self, req: ReqId, conn: ConnId, c: &Conn) -> Addressing {
        let cl = self.cluster;
        let loc = |p: PodId| self.state.loc[p.index()];
        // A label per connection record and role (a request's DNS, main and
        // upstream connections may reuse one record in turn).
        let r = self.reqs.get(req);
        let role = if r.dns_conn == Some(conn) {
            1
        } else if r.up_conn == Some(conn) {
            2
        } else {
            0
        };
        let port = 32768 + ((conn.get() as u64 * 3 + role) * 7919 % 28232) as u16;
        let client_ip = match c.path {
            Path::Route { from, .. } | Path::ToHost { from, .. } => match from {
                Place::Pod { .. } if c.src == LOCALHOST => LOCALHOST,
                Place::Pod { pod, .. } => loc(pod).ip,
                Place::Host { node } => cl.nodes[node.index()].ip,
                Place::External { .. } | Place::ViaLoadBalancer { .. } => {
                    external_ip(c.client.expect("an external client"))
                }
            },
            Path::Hairpin { .. } => loc(c.server_pod.expect("a hairpin's pod")).ip,
        };
        let server = match (c.server_pod, c.hit_sp, c.ep) {
            (None, _, _) => Sock { ip: crate::dns::NODE_LOCAL_DNS_IP, port: 53 },
            (Some(_), Some(sp), Some(ep)) => {
                let e = self.state.endpoint(cl, sp, ep);
                Sock { ip: if c.src == LOCALHOST { LOCALHOST } else { loc(e.pod).ip }, port: e.port }
            }
            (Some(p), _, _) => {
                let port = match self.flows[self.reqs.get(req).flow as usize].flow.target {
                    Target::Localhost(port) | Target::Pod { port, .. } => port,
                    _ => 0,
                };
                Sock { ip: if c.src == LOCALHOST { LOCALHOST } else { loc(p).ip }, port }
            }
        };
        let sent_to = match c.sp {
            Some(sp) => service_address(cl, sp, c.entry, c.pnode),
            None => server,
        };
        let socket_lb = c.sp.is_some()
            && self.params.proxy.mode == Mode::Ebpf
            && c.entry == Entry::ClusterIp
            && matches!(
                c.path,
                Path::Route { from: Place::Pod { .. }, .. }
                    | Path::ToHost { from: Place::Pod { .. }, .. }
                    | Path::Hairpin { .. }
            );
        Addressing {
            client: Sock { ip: client_ip, port },
            sent_to,
            server,
            seen_src: Sock { ip: c.src, port },
            nat_node: c.sp.map(|_| c.pnode),
            socket_lb,
        }
    }

    /// Records the proxy's decision `d` on `node` for `sp` (entered by
    /// `entry`), with what it cost and why.
    pub(super) fn trace_decision(&mut self, req: ReqId, now: u64, node: NodeId, sp: SpId, entry: Entry, d: &Dnat) {
        if self.tracing(req).is_none() {
            return;
        }
        let cl = self.cluster;
        let e = self.state.endpoint(cl, sp, d.endpoint);
        let to = Sock { ip: self.state.loc[e.pod.index()].ip, port: e.port };
        let via = service_address(cl, sp, entry, node);
        let c = d.cost;
        let how = match &self.proxy {
            Proxy::Iptables(ipt) => {
                use crate::proxy::iptables_save::{chain, sep_chain_of};
                let at = match entry {
                    Entry::ClusterIp => ipt.service_position(node, sp).map(|p| format!("KUBE-SERVICES rule {}", p + 1)),
                    Entry::LoadBalancer => ipt.lb_position(node, sp).map(|p| format!("KUBE-SERVICES rule {}", p + 1)),
                    Entry::NodePort => {
                        ipt.nodeport_position(node, sp).map(|p| format!("KUBE-NODEPORTS rule {}", p + 1))
                    }
                };
                // As kube-proxy writes them: external entries pass the
                // port's KUBE-EXT chain; a Local policy's chain is KUBE-SVL.
                let svc = &cl.services[cl.service_ports[sp.index()].service.index()];
                let policy = if entry.external() { svc.external_traffic_policy } else { svc.internal_traffic_policy };
                let svc_chain = match policy {
                    crate::cluster::TrafficPolicy::Local => chain(cl, sp, "KUBE-SVL"),
                    crate::cluster::TrafficPolicy::Cluster => chain(cl, sp, "KUBE-SVC"),
                };
                let ext = if entry.external() { format!("{} > ", chain(cl, sp, "KUBE-EXT")) } else { String::new() };
                format!(
                    "{} > {ext}{svc_chain} > {}; {} rules passed",
                    at.unwrap_or_else(|| "KUBE-SERVICES".into()),
                    sep_chain_of(cl, sp, to.ip, to.port),
                    c.entries
                )
            }
            Proxy::Nftables(_) => format!(
                "service-ips verdict map > service chain of {} > numgen element; {} entries",
                crate::proxy::iptables_save::port_name(cl, sp),
                c.entries
            ),
            Proxy::Ipvs(_) => format!("IPVS virtual server {via} > real server {to}; {} entries", c.entries),
            Proxy::Ebpf(_) => format!("eBPF service map {via} > backend {to}; {} lookups", c.entries),
        };
        let text = format!(
            "{} chose {to} for {via} ({}): {how}; lookup {} ns, conntrack entry {} ns",
            self.params.proxy.mode.name(),
            crate::proxy::iptables_save::port_name(cl, sp),
            c.lookup_ns,
            c.conntrack_ns
        );
        self.trace_event(req, now, EventKind::Proxy, Some(node), text);
    }
}

impl World<'_> {
    /// Records NetworkPolicy's verdict on `req`'s first packet, checked
    /// for egress on node `from` and for ingress on node `to`.
    pub(super) fn trace_policy(
        &mut self,
        req: ReqId,
        now: u64,
        [from, to]: [NodeId; 2],
        verdict: &Result<[u64; 2], crate::policy::Direction>,
    ) {
        use crate::policy::Direction;
        let (node, text) = match verdict {
            Ok([e, i]) => {
                (from, format!("allowed: egress check {e} ns here, ingress check {i} ns on the server's node"))
            }
            Err(Direction::Egress) => {
                (from, "denied: the client pod's egress is isolated and no policy allows this; dropped".to_string())
            }
            Err(Direction::Ingress) => {
                (to, "denied: the server pod's ingress is isolated and no policy allows this; dropped".to_string())
            }
        };
        self.trace_event(req, now, EventKind::Policy, Some(node), text);
    }
}

/// The address a connection to `sp` entered by `entry` on `node` is sent to.
fn service_address(cl: &crate::cluster::Cluster, sp: SpId, entry: Entry, node: NodeId) -> Sock {
    let p = &cl.service_ports[sp.index()];
    let svc = &cl.services[p.service.index()];
    match entry {
        Entry::ClusterIp => Sock { ip: svc.cluster_ip.unwrap_or(Ipv4(0)), port: p.port },
        Entry::NodePort => Sock { ip: cl.nodes[node.index()].ip, port: p.node_port.unwrap_or(0) },
        Entry::LoadBalancer => Sock { ip: svc.load_balancer_ip.unwrap_or(Ipv4(0)), port: p.port },
    }
}

/// The near and far ends of connection `c`'s path.
fn ends(c: &Conn) -> (End, End) {
    match c.path {
        Path::Route { from, to_pod, to_node } => (End::of(from), End::of(Place::Pod { pod: to_pod, node: to_node })),
        Path::Hairpin { node } => {
            let e = End::of(Place::Pod { pod: c.server_pod.expect("a hairpin's pod"), node });
            (e, e)
        }
        // A hostNetwork server is named at its socket (the cache is none).
        Path::ToHost { from, node } => (End::of(from), End { pod: c.server_pod, ..End::of(Place::Host { node }) }),
    }
}

/// A message's name in the trace.
fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::DnsQuery => "DNS query",
        Phase::DnsReply => "DNS answer",
        Phase::DnsUpstream => "DNS query forwarded",
        Phase::DnsUpReply => "DNS answer to the cache",
        Phase::Syn => "SYN",
        Phase::SynAck => "SYN-ACK",
        Phase::Rst => "RST",
        Phase::Request => "request",
        Phase::Response => "response",
        Phase::ErrorReply => "error reply",
        Phase::Upstream => "request to the backend",
        Phase::UpResponse => "backend's response",
        _ => "message",
    }
}
