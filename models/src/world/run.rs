//! Event handling: the request state machine.

use emu_engine::{Acquire, Model, Scheduler, SimDuration, SimTime};

pub use super::events::Ev;

use super::{ServerKind, World};
use crate::addr::Ipv4;
use crate::datapath::{HopKind, Msg};
use crate::ids::{ClientId, ConnId, EpId, NodeId, PodId, ReqId, ServerId, SpId};
use crate::proxy::{Dnat, Entry, ProxyModel};
use crate::traffic::{Arrivals, Client, Failure};

// The hot records keep their size (x86-64: an event 12 bytes, a connection
// 64, a request 96: its message's leg is the connection's, in
// `World::legs`); the ids' `Option`s cost no more than the ids. (A debug
// build's request is 4 bytes more: its walk numbers its connection's
// opening, `legs::Opening`.)
const _: () = assert!(std::mem::size_of::<Ev>() <= 12);
const _: () = assert!(std::mem::size_of::<Conn>() <= 64);
#[cfg(not(debug_assertions))]
const _: () = assert!(std::mem::size_of::<Req>() <= 96);

/// Where a request is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    DnsQuery,
    DnsAtServer,
    DnsReply,
    Syn,
    SynAck,
    Rst,
    Reject,
    Request,
    AtServer,
    Response,
    ErrorReply,
    /// The first packet was dropped and will not be sent again: the
    /// request fails (`failure`) at its Deliver.
    Dropped,
    /// The SYN was dropped (`failure` says why); its retransmission waits
    /// for a `Retry`.
    SynLost,
    /// The DNS query was dropped by a full conntrack table; the resolver's
    /// next try waits for a `Retry`.
    QueryLost,
    /// The ingress controller's request on its way to the backend pod.
    Upstream,
    /// At the backend server, behind the ingress controller.
    UpAtServer,
    /// The backend's response on its way back to the controller.
    UpResponse,
    /// The message vanished at a lost node: the request waits for its
    /// timeout.
    Lost,
    /// A NodeLocal DNSCache miss forwarded to CoreDNS.
    DnsUpstream,
    /// At CoreDNS, for a node's cache.
    DnsUpAtServer,
    /// CoreDNS's answer on its way back to the cache.
    DnsUpReply,
}

impl Phase {
    /// Whether the message of this phase arrives at a server.
    pub(super) fn to_server(self) -> bool {
        matches!(self, Phase::DnsQuery | Phase::Request | Phase::Upstream | Phase::DnsUpstream)
    }
}

/// A connection: its route both ways and who serves it.
pub(crate) struct Conn {
    /// Its path (its two legs, built from it when it opens, are in
    /// `World::legs`).
    pub(super) path: crate::datapath::Path,
    /// Its server; `None` when nothing listens (the SYN gets a RST).
    pub(super) server: Option<ServerId>,
    /// The server's pod; `None` for a node's DNS cache.
    pub(super) server_pod: Option<PodId>,
    /// Service port whose kube-proxy decided; `None` for direct traffic.
    pub(super) sp: Option<SpId>,
    /// The endpoint (of `hit_sp`) that serves it.
    pub(super) ep: Option<EpId>,
    /// Service port whose endpoint serves this connection (counted in
    /// `endpoint_hits`); `None` when the target is no Service.
    pub(super) hit_sp: Option<SpId>,
    /// The source address the server sees.
    pub(super) src: Ipv4,
    /// The flow's client that opened it; `None` for the connections of
    /// nodes' DNS caches and the ingress controller.
    pub(super) client: Option<ClientId>,
    /// The node whose proxy decided, and how the connection arrived there.
    pub(super) pnode: NodeId,
    pub(super) entry: Entry,
    /// Nodes holding a conntrack entry for it.
    pub(super) ct: [Option<NodeId>; 2],
}

/// What a node's proxy did with a new connection to a Service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Decision {
    /// Forward to this endpoint at this cost.
    Endpoint(Dnat),
    /// The Service has no endpoints: REJECT.
    NoEndpoints,
    /// The mode found no destination among the candidates (IPVS, every one
    /// of weight 0): ICMP port unreachable.
    NoDestination,
    /// A Local traffic policy and no endpoint on this node: DROP.
    Dropped,
}

pub(crate) struct Req {
    pub(super) flow: u32,
    /// The closed-loop client slot; `None` in an open loop.
    pub(super) slot: Option<u32>,
    pub(super) client: ClientId,
    pub(super) gen: u32,
    pub(super) start: SimTime,
    pub(super) phase: Phase,
    pub(super) conn: Option<ConnId>,
    pub(super) dns_conn: Option<ConnId>,
    /// The ingress controller's connection to the backend (or a node's DNS
    /// cache's to CoreDNS).
    pub(super) up_conn: Option<ConnId>,
    pub(super) dns_query: u8,
    /// A resolver that asks one question at a time: the current message
    /// is the candidate's AAAA question (its A was answered).
    pub(super) dns_aaaa: bool,
    /// Server jobs the current message still holds (a DNS message of two
    /// questions is two jobs at CoreDNS).
    pub(super) jobs: u8,
    /// Start of the current DNS query.
    pub(super) mark: SimTime,
    /// Arrival at the current server (start of the queue wait).
    pub(super) arrived: SimTime,
    pub(super) abandoned: bool,
    pub(super) failure: Failure,
    /// SYNs (or SYN-ACKs) of the connection attempt lost so far.
    pub(super) syn_losses: u8,
    /// The node the connection enters by, once drawn (a `<NodeIP>` node
    /// port, a load balancer's choice), kept for retransmitted SYNs; `None`
    /// before the first.
    pub(super) entry_node: Option<NodeId>,
    /// The headless Service endpoint the client took from its DNS answer,
    /// kept for retransmitted SYNs; `None` before the first.
    pub(super) headless_ep: Option<EpId>,
    /// The message in flight.
    pub(super) walk: super::walk::Walk,
}

impl Req {
    /// The connection a message of `phase` travels on.
    pub(super) fn conn_of(&self, phase: Phase) -> ConnId {
        self.conn_of_any(phase).expect("a message travels on a connection")
    }

    /// The connection a message of `phase` would travel on, if it has one.
    #[inline]
    pub(super) fn conn_of_any(&self, phase: Phase) -> Option<ConnId> {
        match phase {
            Phase::DnsQuery | Phase::DnsAtServer | Phase::DnsReply => self.dns_conn,
            Phase::Upstream | Phase::UpAtServer | Phase::UpResponse => self.up_conn,
            Phase::DnsUpstream | Phase::DnsUpAtServer | Phase::DnsUpReply => self.up_conn,
            _ => self.conn,
        }
    }
}

/// The address of external client `i`: 198.18.0.0/15 (RFC 2544).
pub(super) fn external_ip(i: ClientId) -> Ipv4 {
    Ipv4(u32::from_be_bytes([198, 18, 0, 0]) + 1 + i.get())
}

pub(super) const LOCALHOST: Ipv4 = Ipv4(0x7f00_0001);

impl Model for World<'_> {
    type Event = Ev;

    const PREFETCH_AHEAD: usize = 4;

    /// Staged loads of what an event soon to be handled touches
    /// (`hints.rs`).
    #[inline]
    fn prefetch(&self, soon: &Ev, ahead: usize) {
        self.hint(soon, ahead);
    }

    fn handle(&mut self, ev: Ev, s: &mut Scheduler<Ev>) {
        self.now_ns = s.now().as_nanos();
        if !matches!(ev, Ev::FlowTimeout { .. } | Ev::Resync { .. } | Ev::SyncEnd { quiet: true, .. }) {
            self.live -= 1;
        }
        match ev {
            Ev::Arrival { flow } => self.arrival(flow, s),
            Ev::ClientReady { flow, slot } => {
                let f = &self.flows[flow as usize];
                if f.issued < f.limit && s.now().as_nanos() < f.end_ns {
                    self.issue(flow, Some(slot), s);
                }
            }
            Ev::Deliver { req } => self.deliver(req, s),
            Ev::ServiceDone { req } => self.service_done(req, s),
            Ev::Forwarded { req } => self.forwarded(req, s),
            Ev::HopArrive { req } => self.hop_arrive(req, s),
            Ev::Walk { req } => self.walk_on(req, 0, s),
            Ev::Retry { req } => self.retry(req, s),
            Ev::FlowTimeout { flow } => self.flow_timeouts(flow, s),
            Ev::Change { index } => self.change(index, s),
            Ev::PodStarted { pod } => self.pod_started(pod, s),
            Ev::Probe { pod } => self.probe(pod, s),
            Ev::Available { pod } => self.available(pod, s),
            Ev::Sigterm { pod } => self.sigterm(pod, s),
            Ev::Kill { pod } => self.kill(pod, s),
            Ev::SliceSync { pod } => self.slice_sync(pod, s),
            Ev::Teardown { pod } => self.pod_gone(pod, s),
            Ev::SyncStart { node, gen } => self.sync_start(node, gen, false, s),
            Ev::SyncEnd { node, gen, .. } => self.sync_end(node, gen, s),
            Ev::Resync { node } => self.resync(node, s),
            Ev::NodeNotReady { node, gen } => self.node_not_ready(node, gen, s),
            Ev::Evict { node, gen } => self.evict(node, gen, s),
        }
        if self.live == 0 {
            // Only timeouts of finished requests are left: the run is over.
            s.stop();
        }
    }
}

impl World<'_> {
    /// Schedules a non-timeout event `delay_ns` from now.
    #[inline]
    pub(super) fn at(&mut self, s: &mut Scheduler<Ev>, delay_ns: u64, ev: Ev) {
        self.live += 1;
        s.schedule(SimDuration(delay_ns), ev);
    }

    pub(super) fn arrival(&mut self, flow: u32, s: &mut Scheduler<Ev>) {
        let now = s.now().as_nanos();
        let f = &self.flows[flow as usize];
        if f.issued < f.limit && now < f.end_ns {
            self.issue(flow, None, s);
        }
        let f = &mut self.flows[flow as usize];
        let Arrivals::Open { rate_per_s } = f.flow.arrivals else { unreachable!("arrival of a closed-loop flow") };
        let gap = (-libm::log(f.rng.next_f64_nonzero()) * 1e9 / rate_per_s).round() as u64;
        if f.issued < f.limit && now.saturating_add(gap) < f.end_ns {
            self.at(s, gap, Ev::Arrival { flow });
        }
    }

    pub(super) fn issue(&mut self, flow: u32, slot: Option<u32>, s: &mut Scheduler<Ev>) {
        let now = s.now();
        let f = &mut self.flows[flow as usize];
        f.issued += 1;
        f.stats.requests += 1;
        if f.stats.requests == 1 {
            f.stats.first_ns = now.as_nanos();
        }
        let clients = f.clients();
        let client = ClientId::new(match slot {
            None => f.rng.below(clients as u64) as u32,
            Some(slot) => f.slot_client(slot),
        });
        let gen = self.next_gen;
        self.next_gen = self.next_gen.wrapping_add(1);
        let timeout = f.flow.timeout_ns;
        let mut reused = if f.flow.keep_alive { f.idle.pop(client) } else { None };
        while let Some(c) = reused {
            if self.reusable(flow as usize, c, now.as_nanos()) {
                break;
            }
            self.close_conn(c);
            reused = self.flows[flow as usize].idle.pop(client);
        }
        let f = &mut self.flows[flow as usize];
        let wants_dns = f.dns.is_some();
        let req = self.reqs.insert(Req {
            flow,
            slot,
            client,
            gen,
            start: now,
            phase: Phase::Syn,
            conn: None,
            dns_conn: None,
            up_conn: None,
            dns_query: 0,
            dns_aaaa: false,
            jobs: 0,
            mark: now,
            arrived: now,
            abandoned: false,
            failure: Failure::Timeout,
            syn_losses: 0,
            entry_node: None,
            headless_ep: None,
            walk: super::walk::Walk::IDLE,
        });
        if self.trace.is_some() {
            let nth = self.flows[flow as usize].stats.requests;
            self.trace_issue(req, flow, nth, now.as_nanos());
        }
        let deadline = now.as_nanos() + timeout;
        let f = &mut self.flows[flow as usize];
        f.timeouts.push_back((deadline, req, gen));
        if !f.timer_armed {
            f.timer_armed = true;
            s.schedule_at(SimTime(deadline), Ev::FlowTimeout { flow }); // not counted in `live`
        }
        match reused {
            Some(c) => {
                self.reqs.get_mut(req).conn = Some(c);
                self.send_request(req, s);
            }
            None if wants_dns => self.dns_query(req, s),
            None => self.connect(req, s),
        }
    }

    pub(super) fn client_pod(&self, req: ReqId) -> (PodId, NodeId) {
        let r = self.reqs.get(req);
        let Client::Pods(pods) = &self.flows[r.flow as usize].flow.client else { unreachable!("pod client expected") };
        let pod = pods[r.client.index()];
        (pod, self.state.loc[pod.index()].node)
    }

    /// Sends `req`'s message along its connection, forward or back.
    pub(super) fn send(&mut self, req: ReqId, phase: Phase, back: bool, bytes: u32, s: &mut Scheduler<Ev>) {
        let r = self.reqs.get_mut(req);
        r.phase = phase;
        let conn = r.conn_of(phase);
        let udp = matches!(phase, Phase::DnsQuery | Phase::DnsReply);
        self.start_walk(req, conn, back, Msg { bytes, udp }, [0, 0], s);
    }

    pub(super) fn send_request(&mut self, req: ReqId, s: &mut Scheduler<Ev>) {
        let bytes = self.flows[self.reqs.get(req).flow as usize].flow.request_bytes;
        self.send(req, Phase::Request, false, bytes, s);
    }

    /// Starts service of `req` on `server` now.
    pub(super) fn start_service(&mut self, req: ReqId, server: ServerId, s: &mut Scheduler<Ev>) {
        let sv = &mut self.servers[server.index()];
        let t = sv.dist.sample(&mut sv.rng);
        let r = self.reqs.get(req);
        let hops = &mut self.flows[r.flow as usize].stats.hops;
        let waited = s.now().since(r.arrived).as_nanos();
        match sv.kind {
            ServerKind::App => {
                hops[HopKind::Queue as usize].add(waited);
                hops[HopKind::Server as usize].add(t);
            }
            ServerKind::Ingress => {
                hops[HopKind::IngressQueue as usize].add(waited);
                hops[HopKind::Ingress as usize].add(t);
            }
            ServerKind::Dns | ServerKind::DnsCache => {} // inside the DNS exchange's own time
        }
        if self.trace.is_some() {
            let kind = sv.kind.name();
            let arrived = r.arrived.as_nanos();
            self.trace_server(req, kind, arrived, waited, t);
        }
        self.at(s, t, Ev::ServiceDone { req });
    }

    pub(super) fn deliver(&mut self, req: ReqId, s: &mut Scheduler<Ev>) {
        let r = self.reqs.get(req);
        let phase = r.phase;
        if r.abandoned && !phase.to_server() {
            return self.drop_req(req);
        }
        match phase {
            Phase::DnsQuery | Phase::Request | Phase::Upstream | Phase::DnsUpstream => self.arrive(req, phase, s),
            Phase::DnsReply => self.dns_reply(req, s),
            Phase::Syn => {
                let c = self.conns.get(r.conn_of(phase));
                let now = s.now().as_nanos();
                let refused = c.server.is_none() || c.server_pod.is_some_and(|p| !self.accepting(p, now));
                if refused {
                    self.reqs.get_mut(req).failure = Failure::ConnectionRefused;
                    self.send(req, Phase::Rst, true, 0, s);
                } else {
                    self.send(req, Phase::SynAck, true, 0, s);
                }
            }
            Phase::SynAck => self.send_request(req, s),
            Phase::DnsUpReply => {
                // The cache keeps CoreDNS's answer, then answers the pod.
                let key = self.cache_key(req);
                let ttl = self.dns_ttl(req);
                self.dns_cache.insert(key, s.now().as_nanos() + ttl);
                self.close_up(req);
                self.dns_answer(req, s);
            }
            Phase::UpResponse => {
                let flow = r.flow as usize;
                self.close_up(req);
                let bytes = self.flows[flow].flow.response_bytes;
                self.send(req, Phase::Response, true, bytes, s);
            }
            Phase::Response => self.complete(req, s),
            Phase::Rst | Phase::Reject | Phase::ErrorReply | Phase::Dropped => {
                let why = r.failure;
                self.fail(req, why, s);
            }
            Phase::DnsAtServer
            | Phase::AtServer
            | Phase::UpAtServer
            | Phase::DnsUpAtServer
            | Phase::SynLost
            | Phase::QueryLost
            | Phase::Lost => {
                unreachable!("delivery in phase {phase:?}")
            }
        }
    }

    /// `req`'s message of `phase` reached its server: it queues there (a
    /// DNS message as one job per question), unless the server is gone.
    fn arrive(&mut self, req: ReqId, phase: Phase, s: &mut Scheduler<Ev>) {
        let r = self.reqs.get(req);
        let (flow, conn) = (r.flow, r.conn_of(phase));
        let c = self.conns.get(conn);
        let (server, sp, pod, src) = (c.server, c.hit_sp, c.server_pod, c.src);
        match self.fate(pod) {
            super::fate::Fate::Served => {}
            _ if phase == Phase::DnsQuery || phase == Phase::DnsUpstream => {
                // No answer (a lost node, or a reset that a UDP resolver
                // only sees as silence): it asks again.
                return self.dns_silence(req, s);
            }
            super::fate::Fate::Lost => return self.vanish(req),
            super::fate::Fate::Reset => {
                self.reqs.get_mut(req).failure = Failure::ConnectionReset;
                if phase == Phase::Upstream || phase == Phase::DnsUpstream {
                    self.close_up(req);
                }
                return self.send(req, Phase::ErrorReply, true, 0, s);
            }
        }
        let dns = matches!(phase, Phase::DnsQuery | Phase::DnsUpstream);
        let jobs = if dns { self.message_questions() } else { 1 };
        if sp.is_some() {
            if self.conn_counts[conn.index()].hits > u32::MAX - jobs as u32 {
                self.settle(conn);
            }
            self.conn_counts[conn.index()].hits += jobs as u32;
        }
        if matches!(phase, Phase::Request | Phase::Upstream) {
            self.count_served(conn, flow, pod.expect("a request reaches a pod"), src);
        }
        let r = self.reqs.get_mut(req);
        r.phase = match phase {
            Phase::DnsQuery => Phase::DnsAtServer,
            Phase::Request => Phase::AtServer,
            Phase::DnsUpstream => Phase::DnsUpAtServer,
            _ => Phase::UpAtServer,
        };
        r.arrived = s.now();
        r.jobs = jobs;
        let server = server.expect("a server listens: the handshake was answered");
        for _ in 0..jobs {
            match self.servers[server.index()].fifo.acquire(req.get()) {
                Acquire::Granted => {
                    self.inflight(pod, 1);
                    self.start_service(req, server, s)
                }
                Acquire::Queued => self.inflight(pod, 1),
                Acquire::Rejected => {
                    // The server (or the controller's backend) answers
                    // 503; behind a controller it travels on from there.
                    // (DNS servers' queues are unbounded: never a DNS job.)
                    let r = self.reqs.get_mut(req);
                    r.failure = Failure::QueueFull;
                    if phase == Phase::Upstream {
                        self.close_up(req);
                    }
                    return self.send(req, Phase::ErrorReply, true, 0, s);
                }
            }
        }
    }

    pub(super) fn service_done(&mut self, req: ReqId, s: &mut Scheduler<Ev>) {
        let r = self.reqs.get(req);
        let phase = r.phase;
        let c = self.conns.get(r.conn_of(phase));
        let (server, pod) = (c.server.expect("served by its server"), c.server_pod);
        if let Some(next) = self.servers[server.index()].fifo.release() {
            self.start_service(ReqId::new(next), server, s);
        }
        let fate = self.fate(pod);
        let r = self.reqs.get(req);
        let dns = matches!(phase, Phase::DnsAtServer | Phase::DnsUpAtServer);
        let last = r.jobs <= 1 && !r.abandoned && fate == super::fate::Fate::Served;
        let coredns = dns && self.servers[server.index()].kind != ServerKind::DnsCache;
        if coredns && last && self.needs_upstream(req, server, s.now().as_nanos()) {
            // The query stays the pod's until the upstream answer is back:
            // a terminating CoreDNS pod drains it before it exits.
            self.inflight(pod, 1);
        }
        if let (Some(pod), Some(_)) = (pod, self.control.as_deref()) {
            self.request_done_at(pod, s);
        }
        let r = self.reqs.get_mut(req);
        if r.jobs > 1 {
            // The message's other question is still being answered.
            r.jobs -= 1;
            return;
        }
        r.jobs = 0;
        if self.trace.is_some() {
            let kind = self.servers[server.index()].kind.name();
            self.trace_jobs_done(req, kind, s.now().as_nanos());
        }
        if self.reqs.get(req).abandoned {
            return self.drop_req(req);
        }
        if self.answered(req, phase, fate, s) {
            self.served(req, phase, server, s);
        }
    }

    /// Whether `req`'s server, in `fate`, answers it at all; if not, what
    /// the client sees instead is under way.
    pub(super) fn answered(
        &mut self,
        req: ReqId,
        phase: Phase,
        fate: super::fate::Fate,
        s: &mut Scheduler<Ev>,
    ) -> bool {
        match fate {
            super::fate::Fate::Served => true,
            _ if phase == Phase::DnsAtServer || phase == Phase::DnsUpAtServer => {
                // A UDP resolver sees only silence (a node's cache whose
                // forward is reset answers nothing either): it asks again.
                self.dns_silence(req, s);
                false
            }
            // Killed while it worked: the answer never comes.
            super::fate::Fate::Lost => {
                self.vanish(req);
                false
            }
            super::fate::Fate::Reset => {
                self.reqs.get_mut(req).failure = Failure::ConnectionReset;
                if matches!(phase, Phase::UpAtServer | Phase::DnsUpAtServer) {
                    self.close_up(req);
                }
                self.send(req, Phase::ErrorReply, true, 0, s);
                false
            }
        }
    }

    /// `server` finished `req` (in `phase`): its answer goes back, or on.
    fn served(&mut self, req: ReqId, phase: Phase, server: ServerId, s: &mut Scheduler<Ev>) {
        let kind = self.servers[server.index()].kind;
        let flow = self.reqs.get(req).flow as usize;
        match (phase, kind) {
            (Phase::UpAtServer, _) => {
                let bytes = self.flows[flow].flow.response_bytes;
                self.send(req, Phase::UpResponse, true, bytes, s);
            }
            (_, ServerKind::DnsCache) => {
                let key = self.cache_key(req);
                if self.dns_cache.get(&key).is_some_and(|&exp| exp > s.now().as_nanos()) {
                    self.dns_answer(req, s);
                } else if self.current_try(req).outside {
                    // The add-on's `.:53` block: the node's own upstream.
                    self.forward_upstream(req, server, s);
                } else {
                    self.dns_forward(req, s);
                }
            }
            (Phase::DnsAtServer | Phase::DnsUpAtServer, _) => {
                if self.needs_upstream(req, server, s.now().as_nanos()) {
                    self.forward_upstream(req, server, s);
                } else {
                    self.coredns_answer(req, s);
                }
            }
            (_, ServerKind::Ingress) => self.upstream(req, s),
            _ => {
                let bytes = self.flows[flow].flow.response_bytes;
                self.send(req, Phase::Response, true, bytes, s);
            }
        }
    }

    /// Fires every due timeout of `flow`, then re-arms its timer.
    pub(super) fn flow_timeouts(&mut self, flow: u32, s: &mut Scheduler<Ev>) {
        let now = s.now().as_nanos();
        self.flows[flow as usize].timer_armed = false;
        while let Some(&(deadline, req, gen)) = self.flows[flow as usize].timeouts.front() {
            if deadline > now {
                break;
            }
            self.flows[flow as usize].timeouts.pop_front();
            self.timeout(req, gen, s);
        }
        let f = &mut self.flows[flow as usize];
        if let Some(&(deadline, _, _)) = f.timeouts.front() {
            f.timer_armed = true;
            s.schedule_at(SimTime(deadline), Ev::FlowTimeout { flow });
        }
    }

    pub(super) fn timeout(&mut self, req: ReqId, gen: u32, s: &mut Scheduler<Ev>) {
        let Some(r) = self.reqs.try_get(req) else {
            return;
        };
        if r.gen != gen || r.abandoned {
            return;
        }
        if r.phase == Phase::Dropped {
            return; // its Deliver at this same instant ends it with its drop reason
        }
        let (flow, slot) = (r.flow, r.slot);
        if self.trace.is_some()
            && self.trace_end(req, s.now().as_nanos(), super::trace::Outcome::Failed(Failure::Timeout))
        {
            s.stop();
        }
        let f = &mut self.flows[flow as usize];
        f.stats.fail(&mut f.series, s.now().as_nanos(), Failure::Timeout);
        let lost = self.reqs.get(req).phase == Phase::Lost;
        self.reqs.get_mut(req).abandoned = true;
        if lost {
            // Nothing is in flight for it: free it now.
            self.drop_req(req);
        }
        self.next_for_slot(flow, slot, s);
        // A request waiting in a server queue stays there until served, as
        // the server does not know the client gave up; it is dropped then.
        // A request in flight is dropped when its message arrives.
    }

    /// Request `req`'s dropped first packet is sent again: its SYN, or its
    /// DNS query.
    pub(super) fn retry(&mut self, req: ReqId, s: &mut Scheduler<Ev>) {
        let r = self.reqs.get(req);
        if r.abandoned {
            // (Retries are only scheduled before the timeout; kept for safety.)
            return self.drop_req(req);
        }
        match r.phase {
            Phase::SynLost => self.connect(req, s),
            Phase::QueryLost => {
                // One DNS exchange, from its first try: the wait is in `dns`.
                let mark = r.mark;
                self.dns_query(req, s);
                self.reqs.get_mut(req).mark = mark;
            }
            p => unreachable!("retry in phase {p:?}"),
        }
    }

    /// A closed-loop slot whose request ended schedules its next request.
    pub(super) fn next_for_slot(&mut self, flow: u32, slot: Option<u32>, s: &mut Scheduler<Ev>) {
        let Some(slot) = slot else {
            return;
        };
        let f = &mut self.flows[flow as usize];
        if let Arrivals::Closed { think, .. } = f.flow.arrivals {
            let t = think.sample(&mut f.rng);
            self.at(s, t, Ev::ClientReady { flow, slot });
        }
    }

    pub(super) fn complete(&mut self, req: ReqId, s: &mut Scheduler<Ev>) {
        let now = s.now();
        if self.trace.is_some() {
            let latency = now.since(self.reqs.get(req).start).as_nanos();
            if self.trace_end(req, now.as_nanos(), super::trace::Outcome::Completed(latency)) {
                s.stop();
            }
        }
        let r = self.reqs.remove(req);
        let f = &mut self.flows[r.flow as usize];
        f.stats.complete(&mut f.series, now.as_nanos(), now.since(r.start).as_nanos());
        let conn = r.conn.expect("a response travels on the request's connection");
        if f.flow.keep_alive {
            let client = self.conns.get(conn).client.expect("a flow's client opened it");
            f.idle.push(client, conn);
        } else {
            self.close_conn(conn);
        }
        self.next_for_slot(r.flow, r.slot, s);
    }

    pub(super) fn fail(&mut self, req: ReqId, why: Failure, s: &mut Scheduler<Ev>) {
        if self.trace.is_some() && self.trace_end(req, s.now().as_nanos(), super::trace::Outcome::Failed(why)) {
            s.stop();
        }
        let r = self.reqs.get(req);
        let (flow, slot) = (r.flow, r.slot);
        let f = &mut self.flows[flow as usize];
        f.stats.fail(&mut f.series, s.now().as_nanos(), why);
        self.drop_req(req);
        self.next_for_slot(flow, slot, s);
    }

    /// Frees a request and any connection it holds (never back to a pool).
    pub(super) fn drop_req(&mut self, req: ReqId) {
        let r = self.reqs.remove(req);
        if let Some(pin) = self.control.as_deref_mut().and_then(|c| c.pinned.remove(&req)) {
            // A SYN that vanished and was never answered: given up.
            self.proxy.closed(pin.node, pin.sp, pin.entry, pin.ep, self.now_ns);
        }
        for c in [r.conn, r.dns_conn, r.up_conn].into_iter().flatten() {
            self.close_conn(c);
        }
    }

    /// Stores a new connection, with the legs of its path both ways.
    pub(super) fn open_conn(&mut self, c: Conn) -> ConnId {
        let fwd = c.path.leg(&self.params.datapath, false);
        let id = self.conns.insert(c);
        self.legs.set(id, &fwd);
        if id.index() >= self.conn_counts.len() {
            self.conn_counts.resize(id.index() + 1, super::walk::ConnCounts::ZERO);
        }
        self.conn_counts[id.index()] = super::walk::ConnCounts::ZERO;
        id
    }

    /// Adds what `conn` counted to the run's counts: the requests it
    /// brought to its endpoint to `endpoint_hits`, its walks to its flow's
    /// hop tallies, the requests its server received to `sources`.
    pub(super) fn settle(&mut self, conn: ConnId) {
        self.settle_walks(conn);
        self.settle_served(conn);
        let n = std::mem::take(&mut self.conn_counts[conn.index()].hits);
        let c = self.conns.get(conn);
        if let (Some(sp), true) = (c.hit_sp, n > 0) {
            self.endpoint_hits[sp.index()][c.ep.expect("a Service's endpoint serves it").index()] += n as u64;
        }
    }

    /// Frees a connection; the proxy that chose its endpoint hears of it.
    pub(super) fn close_conn(&mut self, conn: ConnId) {
        self.settle(conn);
        let c = self.conns.remove(conn);
        if self.aged_flows {
            for f in self.flows.iter_mut().filter(|f| f.flow.max_connection_age_ns.is_some()) {
                f.opened.remove(&conn);
            }
        }
        if let Some(sp) = c.sp {
            self.proxy.closed(c.pnode, sp, c.entry, c.ep.expect("the proxy chose an endpoint"), self.now_ns);
        }
        let node = &self.params.node;
        for n in c.ct.into_iter().flatten() {
            let ct = &mut self.conntrack[n.index()];
            if c.server.is_none() {
                // Refused with a RST: CLOSE, never ASSURED.
                ct.refuse_tcp(self.now_ns, node.tcp_close_ns);
            } else {
                ct.close_tcp(self.now_ns, node.tcp_time_wait_ns);
            }
        }
    }
}
