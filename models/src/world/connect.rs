//! Opening a connection: the proxy's decision (traffic policy, session
//! affinity, mode), the route, the first packet's cost, the load balancer.

use emu_engine::Scheduler;

use super::fate::Landing;
use super::policy::Sender;
use super::run::{external_ip, Conn, Decision, Ev, Phase, LOCALHOST};
use super::trace::EventKind;
use super::{FlowRt, World};
use crate::addr::Ipv4;
use crate::cluster::{Protocol, TrafficPolicy};
use crate::datapath::{self, Cni, HopKind, Msg, Path, Place};
use crate::ids::{EpId, NodeId, PodId, ReqId, SpId};
use crate::proxy::{Dnat, Entry, FirstPacket, ProxyModel, Query};
use crate::traffic::{Client, Failure, Target};

/// Where a connection goes, as its client sees it.
struct Aim {
    /// The Service port whose proxy decides; `None` straight to a pod.
    sp: Option<SpId>,
    /// The Service port counted in `endpoints.csv` (a headless Service's too).
    hit_sp: Option<SpId>,
    /// Straight to this pod (`None`: `localhost`), on `port`.
    pod: Option<PodId>,
    port: u16,
    /// A headless Service's endpoint; `None` otherwise.
    ep: Option<EpId>,
    /// The node an external client enters by.
    entry_node: Option<NodeId>,
    /// Through a load balancer.
    via_lb: bool,
}

/// Where the SYN starts.
struct Origin {
    place: Place,
    /// The node whose proxy decides (the client pod's, or the entry node).
    node: NodeId,
    /// The client's address.
    ip: Ipv4,
    /// The client pod; `None` for an external client.
    pod: Option<PodId>,
}

/// The connection as decided, before its SYN leaves.
struct Opening {
    path: Path,
    server_pod: PodId,
    server_port: u16,
    /// The endpoint of the Service port (`None` straight to a pod).
    ep: Option<EpId>,
    /// The source address the server will see.
    src: Ipv4,
    entry: Entry,
    /// The server's node; `None` inside the client pod (no netfilter).
    snode: Option<NodeId>,
    /// First-packet work [ns] on the first and second node.
    extra: [u64; 2],
}

impl World<'_> {
    /// Asks node `node`'s proxy for an endpoint of Service port `sp` for a
    /// new connection, applying the traffic policy and session affinity.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn decide(
        &mut self,
        flow: usize,
        node: NodeId,
        sp: SpId,
        entry: Entry,
        client_ip: Ipv4,
        dest_ip: Ipv4,
        now: u64,
    ) -> Decision {
        let cl = self.cluster;
        // The endpoints as this node's kube-proxy last programmed them.
        let view = self.state.view(cl, sp, node);
        if !view.usable() {
            return Decision::NoEndpoints;
        }
        let port = &cl.service_ports[sp.index()];
        let svc = &cl.services[port.service.index()];
        let policy = if entry.external() { svc.external_traffic_policy } else { svc.internal_traffic_policy };
        let candidates = match policy {
            TrafficPolicy::Cluster => view.cluster(),
            TrafficPolicy::Local => view.local(node),
        };
        if candidates.is_empty() {
            return Decision::Dropped;
        }
        let affinity = svc.affinity_timeout_ns.is_some();
        let q = Query {
            node,
            sp,
            entry,
            candidates,
            client_ip,
            dest_ip,
            affinity,
            now_ns: now,
            extra: self.state.extra(sp),
            version: self.state.synced[node.index()],
        };
        if let Some(timeout) = svc.affinity_timeout_ns {
            if let Some(&(ep, last)) = self.affinity.get(&(node, sp, client_ip)) {
                let position = (0..candidates.len()).find(|&i| candidates.get(i) == ep);
                if let (Some(position), true) = (position, now - last <= timeout) {
                    self.affinity.insert((node, sp, client_ip), (ep, now));
                    return Decision::Endpoint(Dnat { endpoint: ep, cost: self.proxy.affinity_hit(cl, &q, position) });
                }
            }
            let Some(d) = self.proxy.pick(cl, &q, &mut self.flows[flow].rng) else {
                return Decision::NoDestination;
            };
            self.affinity.insert((node, sp, client_ip), (d.endpoint, now));
            return Decision::Endpoint(d);
        }
        self.proxy.pick(cl, &q, &mut self.flows[flow].rng).map_or(Decision::NoDestination, Decision::Endpoint)
    }

    /// Charges a first-packet cost to the flow's proxy and conntrack tallies.
    pub(super) fn charge(hop: HopKind, f: &mut FlowRt, c: FirstPacket) -> u64 {
        if c.entries > 0 {
            f.stats.hops[hop as usize].add(c.lookup_ns);
        }
        if c.conntrack_ns > 0 {
            f.stats.hops[HopKind::Conntrack as usize].add(c.conntrack_ns);
        }
        c.total_ns()
    }

    /// Opens a new connection for `req`: picks the server, builds the
    /// route, and sends the SYN. A retransmitted SYN (after `syn_lost`)
    /// comes here again: the client's own choices are kept (`aim`), the
    /// nodes decide afresh, as for any first packet.
    pub(super) fn connect(&mut self, req: ReqId, s: &mut Scheduler<Ev>) {
        let now = s.now().as_nanos();
        let aim = self.aim(req, now);
        let origin = self.origin(req, &aim);
        // With an eBPF CNI, pod traffic bypasses netfilter: no rule walk,
        // no conntrack entry.
        let netfilter = self.params.datapath.cni != Cni::Ebpf;
        if self.land_node(origin.node).is_none() {
            // The load balancer (or the client) sent it to a lost node.
            return self.syn_lost(req, Failure::Timeout, s);
        }
        let open = if let Some(sp) = aim.sp {
            // Conntrack runs before the nat table and IPVS (PREROUTING
            // priority -200): a full table on the entry node drops the SYN
            // before any proxy decision.
            if netfilter && self.conntrack_refuses(origin.node, now) {
                return self.syn_lost(req, Failure::ConntrackFull, s);
            }
            match self.open_service(req, sp, &origin, netfilter, s) {
                Some(open) => open,
                None => return,
            }
        } else {
            self.open_direct(req, &aim, &origin, netfilter)
        };
        let Some(mut open) = self.landing(req, aim.sp, &origin, open, s) else { return };
        // NetworkPolicy: egress on the client's node, ingress on the
        // server's, before either confirms a conntrack entry.
        let flow = self.reqs.get(req).flow as usize;
        let from = Sender { pod: origin.pod, src: open.src, first: true, dns: false };
        let verdict = self.police(flow, from, open.server_pod, open.server_port, Protocol::Tcp);
        if self.trace.is_some() && !self.cluster.policies.is_empty() {
            let server_node = open.snode.unwrap_or(origin.node);
            self.trace_policy(req, now, [origin.node, server_node], &verdict);
        }
        match verdict {
            Ok([egress, ingress]) => {
                let there = usize::from(open.snode.is_some_and(|n| n != origin.node));
                open.extra[0] += egress;
                open.extra[there] += ingress;
            }
            Err(_) => {
                if let (Some(sp), Some(ep)) = (aim.sp, open.ep) {
                    // The entry node's proxy decided; the SYN went nowhere.
                    self.proxy.closed(origin.node, sp, open.entry, ep, now);
                }
                return self.syn_lost(req, Failure::PolicyDenied, s);
            }
        }
        // Conntrack: an entry on each node whose netfilter sees the flow.
        let mut ct = [None; 2];
        if let (true, Some(snode)) = (netfilter, open.snode) {
            ct = [Some(origin.node), (snode != origin.node).then_some(snode)];
            if ct.into_iter().flatten().any(|n| self.conntrack_refuses(n, now)) {
                if let Some(sp) = aim.sp {
                    // The entry node decided (its own entry would stay in
                    // SYN_SENT); the proxy hears the connection went nowhere.
                    self.proxy.closed(origin.node, sp, open.entry, open.ep.expect("the proxy decided"), now);
                }
                return self.syn_lost(req, Failure::ConntrackFull, s);
            }
            for n in ct.into_iter().flatten() {
                self.conntrack[n.index()].open_tcp(now);
            }
        }
        self.send_syn(req, &aim, &origin, open, ct, s);
    }

    /// Where the SYN of `open` lands in a changing cluster: at the pod
    /// holding the address now (`Some`), or nowhere (`None`: a host
    /// unreachable or a vanished SYN, its next step scheduled).
    fn landing(
        &mut self,
        req: ReqId,
        sp: Option<SpId>,
        origin: &Origin,
        mut open: Opening,
        s: &mut Scheduler<Ev>,
    ) -> Option<Opening> {
        let now = s.now().as_nanos();
        let landing = self.land(open.server_pod);
        if let (Landing::Unassigned(_), Some(sp)) = (landing, sp) {
            // The entry node decided; the proxy hears the connection failed.
            self.proxy.closed(origin.node, sp, open.entry, open.ep.expect("the proxy decided"), now);
        }
        match landing {
            Landing::At(p) => {
                open.server_pod = p;
                Some(open)
            }
            Landing::Unassigned(_) => {
                self.host_unreachable(req, open.path, s);
                None
            }
            Landing::Lost => {
                // The proxy keeps counting the connection (its entry waits in
                // SYN_SENT) until it is answered or given up (`drop_req`).
                if let (Some(ep), Some(sp), Some(ctl)) = (open.ep, sp, self.control.as_deref_mut()) {
                    ctl.pinned.insert(req, super::control::Pin { ep, sp, node: origin.node, entry: open.entry });
                }
                self.syn_lost(req, Failure::Timeout, s);
                None
            }
        }
    }

    /// `Some(node)` unless `node` is lost.
    fn land_node(&self, node: NodeId) -> Option<NodeId> {
        self.control.as_deref().is_none_or(|c| c.nodes[node.index()].alive).then_some(node)
    }

    /// Whether node `node`'s conntrack table refuses a new flow at `now`:
    /// full, with nothing the packet path may evict (the drop is counted
    /// on it; `Conntrack::room`).
    pub(super) fn conntrack_refuses(&mut self, node: NodeId, now: u64) -> bool {
        !self.conntrack[node.index()].room(now)
    }

    /// Where request `req`'s connection goes, as its client sees it. The
    /// client's draws (a `<NodeIP>` node port's node, the load balancer's
    /// node, a headless Service's pod) are made at its first SYN and kept
    /// in the request: a retransmitted SYN has the same addresses (the load
    /// balancer hashes it to the same node while that node is healthy).
    fn aim(&mut self, req: ReqId, now: u64) -> Aim {
        let cl = self.cluster;
        let (flow, kept_node, kept_ep) = {
            let r = self.reqs.get(req);
            (r.flow as usize, r.entry_node, r.headless_ep)
        };
        let nodes = cl.nodes.len() as u64;
        let f = &mut self.flows[flow];
        let (target, dns, rng) = (&f.flow.target, &f.dns, &mut f.rng);
        let mut node = || kept_node.unwrap_or_else(|| NodeId::new(rng.below(nodes) as u32));
        let tcp = |svc, port| Some(cl.service_port(svc, port, Protocol::Tcp).expect("validated"));
        let (sp, pod, port, entry_node, via_lb) = match target {
            Target::Localhost(port) => (None, None, *port, None, false),
            Target::Pod { pod, port } => (None, Some(*pod), *port, None, false),
            Target::Name { port, .. } => (
                tcp(dns.as_ref().and_then(|p| p.answer).expect("resolved before connect"), *port),
                None,
                0,
                None,
                false,
            ),
            Target::ServiceIp { service, port } => (tcp(*service, *port), None, 0, None, false),
            Target::NodePort { node: at, port } => {
                let entry = at.unwrap_or_else(&mut node);
                (Some(cl.port_by_node_port(*port).expect("validated")), None, 0, Some(entry), false)
            }
            Target::LoadBalancer { service, port } => (tcp(*service, *port), None, 0, None, true),
            // The controller's Service: its load balancer, or a random
            // node's node port.
            Target::Ingress { service, port, .. } if cl.services[service.index()].load_balancer_ip.is_some() => {
                (tcp(*service, *port), None, 0, None, true)
            }
            Target::Ingress { service, port, .. } => (tcp(*service, *port), None, 0, Some(node()), false),
        };
        let entry_node = match (via_lb, sp) {
            (true, Some(sp)) => Some(self.lb_node(flow, sp, now, kept_node)),
            _ => entry_node,
        };
        let mut aim = Aim { sp, hit_sp: sp, pod, port, ep: None, entry_node, via_lb };
        // A pod's own name (a StatefulSet's `web-0.nginx`): that pod, as
        // the headless Service's endpoint.
        let named = self.flows[flow].dns.as_ref().and_then(|p| p.pod);
        if let (Some(pod), Some(sp)) = (named, sp) {
            let i = (0..self.state.endpoints_ever(cl, sp))
                .map(EpId::from_index)
                .find(|&i| self.state.endpoint(cl, sp, i).pod == pod);
            if let Some(i) = i {
                let e = self.state.endpoint(cl, sp, i);
                (aim.sp, aim.ep, aim.pod, aim.port) = (None, Some(i), Some(e.pod), e.port);
                let r = self.reqs.get_mut(req);
                (r.entry_node, r.headless_ep) = (entry_node, aim.ep);
                return aim;
            }
        }
        // A headless Service: DNS answered with the pod IPs (CoreDNS's
        // `loadbalance` shuffles them) and the client takes the first.
        if let Some(sp) = sp.filter(|sp| !cl.services[cl.service_ports[sp.index()].service.index()].has_cluster_ip()) {
            // CoreDNS answers from the latest slices: the ready endpoints.
            let eps = self.state.at(cl, sp, u64::MAX).cluster();
            let rng = &mut self.flows[flow].rng;
            let i = match kept_ep {
                Some(i) => i,
                None if eps.is_empty() => {
                    // Every endpoint went away since the answer: the
                    // client connects to the last one it was given.
                    EpId::from_index(self.state.endpoints_ever(cl, sp) - 1)
                }
                None => eps.get(rng.below(eps.len() as u64) as u32),
            };
            let e = self.state.endpoint(cl, sp, i);
            (aim.sp, aim.ep, aim.pod, aim.port) = (None, Some(i), Some(e.pod), e.port);
        }
        let r = self.reqs.get_mut(req);
        (r.entry_node, r.headless_ep) = (entry_node, aim.ep);
        aim
    }

    /// Where request `req`'s SYN starts: the client's place, the node whose
    /// proxy decides, and the client's address.
    fn origin(&self, req: ReqId, aim: &Aim) -> Origin {
        let r = self.reqs.get(req);
        match &self.flows[r.flow as usize].flow.client {
            Client::Pods(pods) => {
                let pod = pods[r.client.index()];
                let loc = self.state.loc[pod.index()];
                Origin { place: self.place_of(pod), node: loc.node, ip: loc.ip, pod: Some(pod) }
            }
            Client::External(_) => {
                let node = aim.entry_node.expect("validated: external clients target node ports or load balancers");
                let place = if aim.via_lb { Place::ViaLoadBalancer { node } } else { Place::External { node } };
                Origin { place, node, ip: external_ip(r.client), pod: None }
            }
        }
    }

    /// A connection straight to a pod socket (a pod IP, `localhost`, a
    /// headless Service's pod): no proxy decision, only misses.
    fn open_direct(&mut self, req: ReqId, aim: &Aim, origin: &Origin, netfilter: bool) -> Opening {
        let hop = self.proxy.hop();
        let pod = aim.pod.or(origin.pod).expect("validated: localhost only from a pod");
        let node = self.state.loc[pod.index()].node;
        let f = &mut self.flows[self.reqs.get(req).flow as usize];
        let mut extra = [0u64; 2];
        if Some(pod) != origin.pod && netfilter {
            f.stats.first_packet.record(self.proxy.miss().total_ns());
            extra[0] = Self::charge(hop, f, self.proxy.miss());
            if node != origin.node {
                extra[1] = Self::charge(hop, f, self.proxy.miss());
            }
        }
        Opening {
            path: self.path_to(origin.place, pod, node),
            server_pod: pod,
            server_port: aim.port,
            ep: aim.ep,
            // Only a `localhost` target is sent from 127.0.0.1. A pod
            // reaching its own IP goes through `lo` too, but the route's
            // preferred source is that address (`local <pod IP> dev lo src
            // <pod IP>`): the server sees the pod IP
            // (models/notes/source-address.md).
            src: if aim.pod.is_none() { LOCALHOST } else { origin.ip },
            entry: Entry::ClusterIp,
            snode: if Some(pod) == origin.pod { None } else { Some(node) },
            extra,
        }
    }

    /// A connection to a Service port: the entry node's proxy decides.
    /// `None` when it refused the SYN (then the request's next step is
    /// already scheduled).
    fn open_service(
        &mut self,
        req: ReqId,
        sp: SpId,
        origin: &Origin,
        netfilter: bool,
        s: &mut Scheduler<Ev>,
    ) -> Option<Opening> {
        let cl = self.cluster;
        let (flow, now, hop, cnode) =
            (self.reqs.get(req).flow as usize, s.now().as_nanos(), self.proxy.hop(), origin.node);
        let entry = match origin.place {
            Place::Pod { .. } | Place::Host { .. } => Entry::ClusterIp,
            Place::ViaLoadBalancer { .. } => Entry::LoadBalancer,
            _ => Entry::NodePort,
        };
        let svc = &cl.services[cl.service_ports[sp.index()].service.index()];
        let dest = match entry {
            Entry::ClusterIp => svc.cluster_ip.expect("not headless"),
            Entry::NodePort => cl.nodes[cnode.index()].ip,
            Entry::LoadBalancer => svc.load_balancer_ip.expect("via a load balancer"),
        };
        let pinned = self.control.as_deref_mut().and_then(|c| c.pinned.remove(&req));
        let decision = match pinned.as_ref() {
            // A retransmission of a SYN that vanished: its conntrack entry
            // holds the DNAT, no rule is walked again.
            Some(pin) => Decision::Endpoint(Dnat { endpoint: pin.ep, cost: FirstPacket::default() }),
            None => self.decide(flow, cnode, sp, entry, origin.ip, dest, now),
        };
        let d = match decision {
            Decision::Endpoint(d) => d,
            refused => {
                self.refuse(req, origin.place, refused, s);
                return None;
            }
        };
        if self.trace.is_some() {
            if pinned.is_some() {
                let text = "the retransmitted SYN follows its conntrack entry's DNAT (no rule walk)".to_string();
                self.trace_event(req, now, EventKind::Conntrack, Some(cnode), text);
            } else {
                self.trace_decision(req, now, cnode, sp, entry, &d);
            }
        }
        let e = self.state.endpoint(cl, sp, d.endpoint);
        let node = self.state.loc[e.pod.index()].node;
        let to_host = self.spec_pod(e.pod).host_network;
        let direct = self.path_to(origin.place, e.pod, node);
        let f = &mut self.flows[flow];
        f.stats.first_packet.record(d.cost.total_ns());
        let mut extra = [Self::charge(hop, f, d.cost), 0];
        let at = &cl.nodes[cnode.index()];
        let local_policy = svc.external_traffic_policy == TrafficPolicy::Local;
        let (path, src) = if Some(e.pod) == origin.pod && matches!(origin.place, Place::Pod { .. }) {
            // Hairpin: kube-proxy masquerades a pod reaching itself.
            (Path::Hairpin { node: cnode }, at.bridge_ip)
        } else {
            let src = match origin.place {
                Place::Pod { .. } => origin.ip,
                // The node's own traffic to a ClusterIP leaves with the
                // address routing picks: eth0's; a local pod endpoint is
                // reached over cbr0, whose address it takes.
                Place::Host { .. } if node == cnode && !to_host => at.bridge_ip,
                Place::Host { .. } => origin.ip,
                // externalTrafficPolicy Local: no SNAT, the client's
                // address reaches the pod.
                _ if local_policy => origin.ip,
                // Cluster: MASQUERADE takes the address of the
                // interface the packet leaves by.
                _ if node != cnode => at.ip,
                _ => at.bridge_ip,
            };
            (direct, src)
        };
        if node != cnode && netfilter {
            extra[1] = Self::charge(hop, f, self.proxy.miss());
        }
        Some(Opening {
            path,
            server_pod: e.pod,
            server_port: e.port,
            ep: Some(d.endpoint),
            src,
            entry,
            snode: Some(node),
            extra,
        })
    }

    /// The entry node's proxy refused `req`'s SYN. No endpoints:
    /// kube-proxy's filter rule REJECTs it; no destination (IPVS, every
    /// candidate of weight 0): ip_vs_leave answers ICMP port unreachable,
    /// which aborts the connect (tcp_v4_err). Either comes back after a
    /// round trip to the node. No local endpoint: the SYN is dropped,
    /// nothing comes back, and the client retransmits it (`syn_lost`).
    fn refuse(&mut self, req: ReqId, place: Place, refused: Decision, s: &mut Scheduler<Ev>) {
        let (flow, hop) = (self.reqs.get(req).flow as usize, self.proxy.hop());
        let dp = &self.params.datapath;
        let leg = datapath::to_node(dp, place);
        let f = &mut self.flows[flow];
        let hops = &mut f.stats.hops;
        let there = leg.idle_ns(dp, Msg::tcp(0), |k, ns| hops[k as usize].add(ns));
        let miss = Self::charge(hop, f, self.proxy.miss());
        if refused == Decision::Dropped {
            // (The SYN's trip `there` and `miss` are in the hop tallies.)
            if self.trace.is_some() {
                let text = "no local endpoint (traffic policy Local): the SYN is dropped".to_string();
                self.trace_event(req, s.now().as_nanos(), EventKind::Drop, place_node(place), text);
            }
            return self.syn_lost(req, Failure::NoLocalEndpoint, s);
        }
        let back = leg.reversed().idle_ns(dp, Msg::tcp(0), |k, ns| f.stats.hops[k as usize].add(ns));
        let r = self.reqs.get_mut(req);
        r.phase = Phase::Reject;
        r.failure = if refused == Decision::NoDestination { Failure::NoDestination } else { Failure::NoEndpoints };
        if self.trace.is_some() {
            let why = if refused == Decision::NoDestination {
                "IPVS found no destination: ICMP port unreachable"
            } else {
                "no endpoints: the filter table's REJECT answers"
            };
            self.trace_wait(
                req,
                s.now().as_nanos(),
                there + back + miss,
                &format!("the SYN to the node and back: {why}"),
            );
        }
        self.at(s, there + back + miss, Ev::Deliver { req });
    }

    /// Request `req`'s SYN was dropped on its way (`why`): the client
    /// retransmits it after the SYN RTO (`NodeParams::syn_rto_ns`) while
    /// retransmissions remain and the flow's timeout has not come; else the
    /// connect gives up, and the request fails for `why` one RTO later or
    /// at its timeout, whichever is first.
    pub(super) fn syn_lost(&mut self, req: ReqId, why: Failure, s: &mut Scheduler<Ev>) {
        let now = s.now().as_nanos();
        let r = self.reqs.get_mut(req);
        r.syn_losses = r.syn_losses.saturating_add(1);
        r.failure = why;
        let f = &mut self.flows[r.flow as usize];
        let deadline = r.start.as_nanos() + f.flow.timeout_ns;
        let (wait, again) = self.params.node.syn_rto_ns(r.syn_losses as u32);
        if again && now + wait < deadline {
            r.phase = Phase::SynLost;
            f.stats.retransmits += 1;
            if self.trace.is_some() {
                self.trace_wait(req, now, wait, &format!("SYN lost ({}): the client retransmits it", why.name()));
            }
            return self.at(s, wait, Ev::Retry { req });
        }
        r.phase = Phase::Dropped;
        let end = (now + wait).min(deadline).max(now);
        if self.trace.is_some() {
            self.trace_wait(req, now, end - now, &format!("SYN lost ({}): the connect gives up", why.name()));
        }
        self.at(s, end - now, Ev::Deliver { req });
    }

    /// Sends request `req`'s SYN on a new connection.
    fn send_syn(
        &mut self,
        req: ReqId,
        aim: &Aim,
        origin: &Origin,
        open: Opening,
        ct: [Option<NodeId>; 2],
        s: &mut Scheduler<Ev>,
    ) {
        let client = self.reqs.get(req).client;
        self.flows[self.reqs.get(req).flow as usize].stats.connections += 1;
        let server = if self.spec_pod(open.server_pod).listens_on(open.server_port, Protocol::Tcp).is_some() {
            Some(self.server(open.server_pod, open.server_port, Protocol::Tcp))
        } else {
            None
        };
        let flow = self.reqs.get(req).flow as usize;
        let opened = self.flows[flow].flow.max_connection_age_ns.is_some();
        let c = self.open_conn(Conn {
            path: open.path,
            server,
            server_pod: Some(open.server_pod),
            sp: aim.sp,
            ep: open.ep,
            hit_sp: aim.hit_sp,
            src: open.src,
            client: Some(client),
            pnode: origin.node,
            entry: open.entry,
            ct,
        });
        if opened {
            self.flows[flow].opened.insert(c, s.now().as_nanos());
        }
        let r = self.reqs.get_mut(req);
        r.conn = Some(c);
        r.phase = Phase::Syn;
        self.start_walk(req, c, false, Msg::tcp(0), open.extra, s);
    }
}

/// The node of `place`.
fn place_node(place: Place) -> Option<NodeId> {
    match place {
        Place::Pod { node, .. } | Place::External { node } | Place::ViaLoadBalancer { node } | Place::Host { node } => {
            Some(node)
        }
    }
}
