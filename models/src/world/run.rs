//! Event handling: the request state machine.

use emu_engine::{Acquire, Model, Scheduler, SimDuration, SimTime};

use super::LbPolicy;
use super::{FlowRt, ServerKind, World, NONE};
use crate::addr::Ipv4;
use crate::cluster::Protocol;
use crate::cluster::TrafficPolicy;
use crate::datapath::{self, HopKind, Leg, Place};
use crate::proxy::{Candidates, Dnat, Entry, FirstPacket, ProxyModel, Query};
use crate::traffic::{Arrivals, Client, Failure, Target};

/// An event: a small `Copy` record; payloads live in the world's slabs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ev {
    /// Open loop: the next request of `flow` arrives.
    Arrival {
        /// Flow index.
        flow: u32,
    },
    /// Closed loop: client `slot` of `flow` is ready to send.
    ClientReady {
        /// Flow index.
        flow: u32,
        /// Client slot.
        slot: u32,
    },
    /// The message in flight for request `req` reached the end of its leg.
    Deliver {
        /// Request slab key.
        req: u32,
    },
    /// The server finished working on request `req`.
    ServiceDone {
        /// Request slab key.
        req: u32,
    },
    /// Request `req` (generation `gen`) ran out of time.
    Timeout {
        /// Request slab key.
        req: u32,
        /// Generation, to ignore timeouts of a reused slab slot.
        gen: u32,
    },
}

/// Where a request is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
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
    /// Dropped by a Local traffic policy: nothing comes back.
    Dropped,
    /// The ingress controller's request on its way to the backend pod.
    Upstream,
    /// At the backend server, behind the ingress controller.
    UpAtServer,
    /// The backend's response on its way back to the controller.
    UpResponse,
    /// A NodeLocal DNSCache miss forwarded to CoreDNS.
    DnsUpstream,
    /// At CoreDNS, for a node's cache.
    DnsUpAtServer,
    /// CoreDNS's answer on its way back to the cache.
    DnsUpReply,
}

impl Phase {
    /// Whether the message of this phase arrives at a server.
    fn to_server(self) -> bool {
        matches!(self, Phase::DnsQuery | Phase::Request | Phase::Upstream | Phase::DnsUpstream)
    }
}

/// A connection: its route both ways and who serves it.
pub(crate) struct Conn {
    fwd: Leg,
    rev: Leg,
    /// Server id, or NONE when nothing listens (the SYN gets a RST).
    server: u32,
    server_pod: u32,
    /// Service port whose kube-proxy decided, and endpoint index; NONE
    /// for direct traffic.
    sp: u32,
    ep: u32,
    /// Service port whose endpoint serves this connection (counted in
    /// `endpoint_hits`); NONE when the target is no Service.
    hit_sp: u32,
    /// The source address the server sees.
    src: Ipv4,
    client: u32,
    /// The node whose proxy decided, and how the connection arrived there.
    pnode: u32,
    entry: Entry,
}

/// What a node's proxy did with a new connection to a Service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Decision {
    /// Forward to this endpoint at this cost.
    Endpoint(Dnat),
    /// The Service has no endpoints: REJECT.
    NoEndpoints,
    /// A Local traffic policy and no endpoint on this node: DROP.
    Dropped,
}

pub(crate) struct Req {
    flow: u32,
    slot: u32,
    client: u32,
    gen: u32,
    start: SimTime,
    phase: Phase,
    conn: u32,
    dns_conn: u32,
    /// The ingress controller's connection to the backend.
    up_conn: u32,
    dns_query: u8,
    /// Start of the current DNS query.
    mark: SimTime,
    /// Arrival at the current server (start of the queue wait).
    arrived: SimTime,
    abandoned: bool,
    failure: Failure,
}

impl Req {
    /// The connection a message of `phase` travels on.
    fn conn_of(&self, phase: Phase) -> u32 {
        match phase {
            Phase::DnsQuery | Phase::DnsAtServer | Phase::DnsReply => self.dns_conn,
            Phase::Upstream | Phase::UpAtServer | Phase::UpResponse => self.up_conn,
            Phase::DnsUpstream | Phase::DnsUpAtServer | Phase::DnsUpReply => self.up_conn,
            _ => self.conn,
        }
    }
}

/// The address of external client `i`: 198.18.0.0/15 (RFC 2544).
fn external_ip(i: u32) -> Ipv4 {
    Ipv4(u32::from_be_bytes([198, 18, 0, 0]) + 1 + i)
}

const LOCALHOST: Ipv4 = Ipv4(0x7f00_0001);

impl Model for World<'_> {
    type Event = Ev;

    fn handle(&mut self, ev: Ev, s: &mut Scheduler<Ev>) {
        if !matches!(ev, Ev::Timeout { .. }) {
            self.live -= 1;
        }
        match ev {
            Ev::Arrival { flow } => self.arrival(flow, s),
            Ev::ClientReady { flow, slot } => {
                let f = &self.flows[flow as usize];
                if f.issued < f.limit && s.now().as_nanos() < f.end_ns {
                    self.issue(flow, slot, s);
                }
            }
            Ev::Deliver { req } => self.deliver(req, s),
            Ev::ServiceDone { req } => self.service_done(req, s),
            Ev::Timeout { req, gen } => self.timeout(req, gen, s),
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
    fn at(&mut self, s: &mut Scheduler<Ev>, delay_ns: u64, ev: Ev) {
        self.live += 1;
        s.schedule(SimDuration(delay_ns), ev);
    }

    fn arrival(&mut self, flow: u32, s: &mut Scheduler<Ev>) {
        let now = s.now().as_nanos();
        let f = &self.flows[flow as usize];
        if f.issued < f.limit && now < f.end_ns {
            self.issue(flow, NONE, s);
        }
        let f = &mut self.flows[flow as usize];
        let Arrivals::Open { rate_per_s } = f.flow.arrivals else { unreachable!("arrival of a closed-loop flow") };
        let gap = (-f.rng.next_f64_nonzero().ln() * 1e9 / rate_per_s).round() as u64;
        if f.issued < f.limit && now.saturating_add(gap) < f.end_ns {
            self.at(s, gap, Ev::Arrival { flow });
        }
    }

    fn issue(&mut self, flow: u32, slot: u32, s: &mut Scheduler<Ev>) {
        let now = s.now();
        let f = &mut self.flows[flow as usize];
        f.issued += 1;
        f.stats.requests += 1;
        if f.stats.requests == 1 {
            f.stats.first_ns = now.as_nanos();
        }
        let clients = f.clients();
        let client = if slot == NONE { f.rng.below(clients as u64) as u32 } else { slot % clients };
        let gen = self.next_gen;
        self.next_gen = self.next_gen.wrapping_add(1);
        let timeout = f.flow.timeout_ns;
        let reused = if f.flow.keep_alive { f.idle[client as usize].pop() } else { None };
        let wants_dns = f.dns.is_some();
        let req = self.reqs.insert(Req {
            flow,
            slot,
            client,
            gen,
            start: now,
            phase: Phase::Syn,
            conn: NONE,
            dns_conn: NONE,
            up_conn: NONE,
            dns_query: 0,
            mark: now,
            arrived: now,
            abandoned: false,
            failure: Failure::Timeout,
        });
        s.schedule(SimDuration(timeout), Ev::Timeout { req, gen }); // not counted in `live`
        match reused {
            Some(c) => {
                self.reqs.get_mut(req).conn = c;
                self.send_request(req, s);
            }
            None if wants_dns => self.dns_query(req, s),
            None => self.connect(req, s),
        }
    }

    fn client_pod(&self, req: u32) -> (u32, u32) {
        let r = self.reqs.get(req);
        let Client::Pods(pods) = &self.flows[r.flow as usize].flow.client else { unreachable!("pod client expected") };
        let pod = pods[r.client as usize];
        (pod, self.cluster.pods[pod as usize].node)
    }

    /// Asks node `node`'s proxy for an endpoint of Service port `sp` for a
    /// new connection, applying the traffic policy and session affinity.
    #[allow(clippy::too_many_arguments)]
    fn decide(
        &mut self,
        flow: usize,
        node: u32,
        sp: u32,
        entry: Entry,
        client_ip: Ipv4,
        dest_ip: Ipv4,
        now: u64,
    ) -> Decision {
        let cl = self.cluster;
        let port = &cl.service_ports[sp as usize];
        if port.endpoints.is_empty() {
            return Decision::NoEndpoints;
        }
        let svc = &cl.services[port.service as usize];
        let policy = match entry {
            Entry::ClusterIp => svc.internal_traffic_policy,
            Entry::NodePort => svc.external_traffic_policy,
        };
        let candidates = match policy {
            TrafficPolicy::Cluster => Candidates::All(port.endpoints.len() as u32),
            TrafficPolicy::Local => Candidates::Subset(port.local_endpoints(node)),
        };
        if candidates.is_empty() {
            return Decision::Dropped;
        }
        let q = Query { node, sp, entry, candidates, client_ip, dest_ip, affinity: svc.affinity_timeout_ns.is_some() };
        if let Some(timeout) = svc.affinity_timeout_ns {
            if let Some(&(ep, last)) = self.affinity.get(&(node, sp, client_ip)) {
                let position = (0..candidates.len()).find(|&i| candidates.get(i) == ep);
                if let (Some(position), true) = (position, now - last <= timeout) {
                    self.affinity.insert((node, sp, client_ip), (ep, now));
                    return Decision::Endpoint(Dnat { endpoint: ep, cost: self.proxy.affinity_hit(cl, &q, position) });
                }
            }
            let d = self.proxy.pick(cl, &q, &mut self.flows[flow].rng);
            self.affinity.insert((node, sp, client_ip), (d.endpoint, now));
            return Decision::Endpoint(d);
        }
        Decision::Endpoint(self.proxy.pick(cl, &q, &mut self.flows[flow].rng))
    }

    /// The NodeLocal DNSCache key of `req`'s current query.
    fn cache_key(&self, req: u32) -> (u32, u32) {
        let r = self.reqs.get(req);
        let (_, node) = self.client_pod(req);
        (node, self.flows[r.flow as usize].dns_ids[r.dns_query as usize])
    }

    /// Sends `req`'s DNS answer back to the pod that asked.
    fn dns_answer(&mut self, req: u32, s: &mut Scheduler<Ev>) {
        let r = self.reqs.get(req);
        let dp = &self.params.datapath;
        let wire = self.params.dns.response_bytes + dp.udp_header_bytes;
        let delay = self.conns.get(r.dns_conn).rev.walk_wire(dp, wire, |_, _| {});
        self.reqs.get_mut(req).phase = Phase::DnsReply;
        self.at(s, delay, Ev::Deliver { req });
    }

    /// A NodeLocal DNSCache miss: the node forwards the query to CoreDNS
    /// through kube-dns over a kept-alive TCP connection.
    fn dns_forward(&mut self, req: u32, s: &mut Scheduler<Ev>) {
        let (_, node) = self.client_pod(req);
        let flow = self.reqs.get(req).flow as usize;
        let cl = self.cluster;
        let svc = cl.dns_service.expect("validated: DNS enabled");
        let sp = cl.service_port(svc, 53, Protocol::Tcp).expect("kube-dns has 53/TCP");
        let node_ip = cl.nodes[node as usize].ip;
        let vip = cl.services[svc as usize].cluster_ip.expect("kube-dns has a ClusterIP");
        let Decision::Endpoint(d) = self.decide(flow, node, sp, Entry::ClusterIp, node_ip, vip, s.now().as_nanos())
        else {
            unreachable!("kube-dns has endpoints and a Cluster policy")
        };
        let ep = cl.service_ports[sp as usize].endpoints[d.endpoint as usize];
        let ep_node = cl.pods[ep.pod as usize].node;
        let fwd = datapath::route(&self.params.datapath, Place::Host { node }, ep.pod, ep_node);
        let server = self.server(ep.pod, ep.port, Protocol::Tcp);
        let up = self.conns.insert(Conn {
            fwd,
            rev: fwd.reversed(),
            server,
            server_pod: ep.pod,
            sp,
            ep: d.endpoint,
            hit_sp: sp,
            src: node_ip,
            client: NONE,
            pnode: node,
            entry: Entry::ClusterIp,
        });
        self.reqs.get_mut(req).up_conn = up;
        let dp = &self.params.datapath;
        let wire = self.params.dns.query_bytes + dp.header_bytes;
        // A kept-alive connection: conntrack hits, no first-packet cost.
        let delay = fwd.walk_wire(dp, wire, |_, _| {});
        self.reqs.get_mut(req).phase = Phase::DnsUpstream;
        self.at(s, delay, Ev::Deliver { req });
    }

    /// Sends one DNS query of request `req`: to the node's NodeLocal
    /// DNSCache when there is one, else to CoreDNS via kube-dns.
    fn dns_query(&mut self, req: u32, s: &mut Scheduler<Ev>) {
        if self.params.dns.node_local_cache {
            return self.dns_to_cache(req, s);
        }
        let (pod, node) = self.client_pod(req);
        let (flow, client) = {
            let r = self.reqs.get(req);
            (r.flow as usize, r.client)
        };
        let cl = self.cluster;
        let svc = cl.dns_service.expect("validated: DNS enabled");
        let sp = cl.service_port(svc, 53, Protocol::Udp).expect("kube-dns has 53/UDP");
        let src = cl.pods[pod as usize].ip;
        let vip = cl.services[svc as usize].cluster_ip.expect("kube-dns has a ClusterIP");
        let d = match self.decide(flow, node, sp, Entry::ClusterIp, src, vip, s.now().as_nanos()) {
            Decision::Endpoint(d) => d,
            _ => unreachable!("kube-dns has endpoints and a Cluster policy"),
        };
        let ep = cl.service_ports[sp as usize].endpoints[d.endpoint as usize];
        let ep_node = cl.pods[ep.pod as usize].node;
        let fwd = datapath::route(&self.params.datapath, Place::Pod { pod, node }, ep.pod, ep_node);
        let mut extra = d.cost.total_ns();
        if ep_node != node {
            extra += self.proxy.miss().total_ns();
        }
        let server = self.server(ep.pod, ep.port, Protocol::Udp);
        let c = self.conns.insert(Conn {
            fwd,
            rev: fwd.reversed(),
            server,
            server_pod: ep.pod,
            sp,
            ep: d.endpoint,
            hit_sp: sp,
            src,
            client,
            pnode: node,
            entry: Entry::ClusterIp,
        });
        let r = self.reqs.get_mut(req);
        r.dns_conn = c;
        r.phase = Phase::DnsQuery;
        r.mark = s.now();
        let dp = &self.params.datapath;
        let wire = self.params.dns.query_bytes + dp.udp_header_bytes;
        let delay = fwd.walk_wire(dp, wire, |_, _| {}) + extra;
        self.at(s, delay, Ev::Deliver { req });
    }

    /// Sends `req`'s query to the cache on its own node (link-local,
    /// NOTRACK: no conntrack, no DNAT).
    fn dns_to_cache(&mut self, req: u32, s: &mut Scheduler<Ev>) {
        let (pod, node) = self.client_pod(req);
        let server = self.cache_server(node);
        let fwd = datapath::to_host(&self.params.datapath);
        let client = self.reqs.get(req).client;
        let c = self.conns.insert(Conn {
            fwd,
            rev: fwd.reversed(),
            server,
            server_pod: NONE,
            sp: NONE,
            ep: NONE,
            hit_sp: NONE,
            src: self.cluster.pods[pod as usize].ip,
            client,
            pnode: node,
            entry: Entry::ClusterIp,
        });
        let r = self.reqs.get_mut(req);
        r.dns_conn = c;
        r.phase = Phase::DnsQuery;
        r.mark = s.now();
        let dp = &self.params.datapath;
        let delay = fwd.walk_wire(dp, self.params.dns.query_bytes + dp.udp_header_bytes, |_, _| {});
        self.at(s, delay, Ev::Deliver { req });
    }

    /// Charges a first-packet cost to the flow's proxy and conntrack tallies.
    fn charge(hop: HopKind, f: &mut FlowRt, c: FirstPacket) -> u64 {
        f.stats.hops[hop as usize].add(c.lookup_ns);
        if c.conntrack_ns > 0 {
            f.stats.hops[HopKind::Conntrack as usize].add(c.conntrack_ns);
        }
        c.total_ns()
    }

    /// Opens a new connection for `req`: picks the server, builds the
    /// route, and sends the SYN.
    fn connect(&mut self, req: u32, s: &mut Scheduler<Ev>) {
        let (flow, client) = {
            let r = self.reqs.get(req);
            (r.flow as usize, r.client)
        };
        let now = s.now().as_nanos();
        let cl = self.cluster;
        let hop = self.proxy.hop();
        // Where the connection goes: a pod socket directly (`sp == NONE`;
        // `direct_pod == NONE` means localhost) or a Service port; and, for
        // external clients, which node it enters by and whether a load
        // balancer sits in front.
        let (sp, mut direct_pod, mut direct_port, entry_node, via_lb) = {
            let f = &mut self.flows[flow];
            match &f.flow.target {
                Target::Localhost(port) => (NONE, NONE, *port, None, false),
                Target::Pod { pod, port } => (NONE, *pod, *port, None, false),
                Target::Name { port, .. } => {
                    let svc = f.dns.as_ref().and_then(|p| p.answer).expect("resolved before connect");
                    (cl.service_port(svc, *port, Protocol::Tcp).expect("validated"), NONE, 0, None, false)
                }
                Target::ServiceIp { service, port } => {
                    (cl.service_port(*service, *port, Protocol::Tcp).expect("validated"), NONE, 0, None, false)
                }
                Target::NodePort { node, port } => {
                    let entry = node.unwrap_or_else(|| f.rng.below(cl.nodes.len() as u64) as u32);
                    (cl.port_by_node_port(*port).expect("validated"), NONE, 0, Some(entry), false)
                }
                Target::LoadBalancer { service, port } => {
                    let sp = cl.service_port(*service, *port, Protocol::Tcp).expect("validated");
                    (sp, NONE, 0, None, true)
                }
                Target::Ingress { service, port, .. } => {
                    // The controller's Service: its load balancer, or a
                    // random node's node port.
                    let sp = cl.service_port(*service, *port, Protocol::Tcp).expect("validated");
                    if cl.services[*service as usize].load_balancer_ip.is_some() {
                        (sp, NONE, 0, None, true)
                    } else {
                        (sp, NONE, 0, Some(f.rng.below(cl.nodes.len() as u64) as u32), false)
                    }
                }
            }
        };
        let entry_node = if via_lb { Some(self.lb_pick(flow, sp, now)) } else { entry_node };
        // A headless Service: DNS answered with the pod IPs (CoreDNS's
        // `loadbalance` shuffles them) and the client takes the first.
        let mut headless_ep = NONE;
        if sp != NONE && !cl.services[cl.service_ports[sp as usize].service as usize].has_cluster_ip() {
            let eps = &cl.service_ports[sp as usize].endpoints;
            if !eps.is_empty() {
                let i = self.flows[flow].rng.below(eps.len() as u64) as usize;
                headless_ep = i as u32;
                (direct_pod, direct_port) = (eps[i].pod, eps[i].port);
            }
        }
        let headless = sp != NONE && direct_pod != NONE;
        let headless_sp = sp;
        let sp = if headless { NONE } else { sp };
        // (place of the client, client node, client address)
        let (place, cnode, cip) = match &self.flows[flow].flow.client {
            Client::Pods(pods) => {
                let pod = pods[client as usize];
                let node = cl.pods[pod as usize].node;
                (Place::Pod { pod, node }, node, cl.pods[pod as usize].ip)
            }
            Client::External(_) => {
                let entry = entry_node.expect("validated: external clients target node ports or load balancers");
                let place =
                    if via_lb { Place::ViaLoadBalancer { node: entry } } else { Place::External { node: entry } };
                (place, entry, external_ip(client))
            }
        };
        let client_pod = match place {
            Place::Pod { pod, .. } => pod,
            _ => NONE,
        };
        let dp = &self.params.datapath.clone();
        let mut extra = 0;
        let (server_pod, server_port, ep, src, fwd, entry);
        if sp == NONE {
            let pod = if direct_pod == NONE { client_pod } else { direct_pod };
            let node = cl.pods[pod as usize].node;
            fwd = datapath::route(dp, place, pod, node);
            let f = &mut self.flows[flow];
            if pod != client_pod {
                f.stats.first_packet.record(self.proxy.miss().total_ns());
                extra += Self::charge(hop, f, self.proxy.miss());
                if node != cnode {
                    extra += Self::charge(hop, f, self.proxy.miss());
                }
            }
            src = if pod == client_pod { LOCALHOST } else { cip };
            (server_pod, server_port, ep, entry) = (pod, direct_port, headless_ep, Entry::ClusterIp);
        } else {
            entry = if matches!(place, Place::Pod { .. }) { Entry::ClusterIp } else { Entry::NodePort };
            let svc = &cl.services[cl.service_ports[sp as usize].service as usize];
            let dest = match entry {
                Entry::ClusterIp => svc.cluster_ip.expect("not headless"),
                Entry::NodePort => cl.nodes[cnode as usize].ip,
            };
            let d = match self.decide(flow, cnode, sp, entry, cip, dest, now) {
                Decision::Endpoint(d) => d,
                refused => {
                    // No endpoints: kube-proxy's filter rule REJECTs the
                    // first packet at the client's node. No local endpoint:
                    // the packet is dropped and the client waits out its
                    // timeout (SYN retransmissions are not modelled).
                    let f = &mut self.flows[flow];
                    let leg = datapath::to_node(dp, place);
                    let hops = &mut f.stats.hops;
                    let there = leg.walk(dp, 0, |k, ns| hops[k as usize].add(ns));
                    let miss = Self::charge(hop, f, self.proxy.miss());
                    let r = self.reqs.get_mut(req);
                    if refused == Decision::Dropped {
                        // Nothing comes back; the client gives up at its
                        // timeout, when this Deliver ends the request.
                        r.phase = Phase::Dropped;
                        r.failure = Failure::NoLocalEndpoint;
                        let left = (r.start.as_nanos() + self.flows[flow].flow.timeout_ns).saturating_sub(now);
                        let _ = (there, miss);
                        self.at(s, left, Ev::Deliver { req });
                        return;
                    }
                    let hops = &mut self.flows[flow].stats.hops;
                    let back = leg.reversed().walk(dp, 0, |k, ns| hops[k as usize].add(ns));
                    r.phase = Phase::Reject;
                    r.failure = Failure::NoEndpoints;
                    self.at(s, there + back + miss, Ev::Deliver { req });
                    return;
                }
            };
            let f = &mut self.flows[flow];
            f.stats.first_packet.record(d.cost.total_ns());
            extra += Self::charge(hop, f, d.cost);
            let e = cl.service_ports[sp as usize].endpoints[d.endpoint as usize];
            let node = cl.pods[e.pod as usize].node;
            let at = &cl.nodes[cnode as usize];
            let local_policy = svc.external_traffic_policy == TrafficPolicy::Local;
            if e.pod == client_pod {
                // Hairpin: kube-proxy masquerades a pod reaching itself.
                fwd = datapath::hairpin(dp);
                src = at.bridge_ip;
            } else {
                fwd = datapath::route(dp, place, e.pod, node);
                src = match place {
                    Place::Pod { .. } => cip,
                    // externalTrafficPolicy Local: no SNAT, the client's
                    // address reaches the pod.
                    _ if local_policy => cip,
                    // Cluster: MASQUERADE takes the address of the
                    // interface the packet leaves by.
                    _ if node != cnode => at.ip,
                    _ => at.bridge_ip,
                };
            }
            if node != cnode {
                extra += Self::charge(hop, f, self.proxy.miss());
            }
            (server_pod, server_port, ep) = (e.pod, e.port, d.endpoint);
        }
        self.flows[flow].stats.connections += 1;
        let server = if cl.pods[server_pod as usize].listens_on(server_port, Protocol::Tcp).is_some() {
            self.server(server_pod, server_port, Protocol::Tcp)
        } else {
            NONE
        };
        let c = self.conns.insert(Conn {
            fwd,
            rev: fwd.reversed(),
            server,
            server_pod,
            sp,
            ep,
            hit_sp: if headless { headless_sp } else { sp },
            src,
            client,
            pnode: cnode,
            entry,
        });
        let r = self.reqs.get_mut(req);
        r.conn = c;
        r.phase = Phase::Syn;
        let hops = &mut self.flows[flow].stats.hops;
        let delay = fwd.walk(&self.params.datapath, 0, |k, ns| hops[k as usize].add(ns)) + extra;
        self.at(s, delay, Ev::Deliver { req });
    }

    /// The node the load balancer of Service port `sp` sends a new
    /// connection to at time `now`.
    fn lb_pick(&mut self, flow: usize, sp: u32, now: u64) -> u32 {
        let cl = self.cluster;
        let port = &cl.service_ports[sp as usize];
        let svc = &cl.services[port.service as usize];
        let lb = &self.params.load_balancer;
        let _ = svc;
        let detected = now >= lb.check_interval_ns.saturating_mul(lb.unhealthy_threshold as u64);
        let n = cl.nodes.len() as u32;
        // Healthy nodes: all of them, unless the policy is Local and the
        // health checks have had time to fail the nodes without endpoints
        // (if no node has one, the load balancer fails open to all).
        let local_only = svc.external_traffic_policy == TrafficPolicy::Local && detected && !port.local.is_empty();
        let count = if local_only { port.local.len() as u32 } else { n };
        let k = match lb.policy {
            LbPolicy::Random => self.flows[flow].rng.below(count as u64) as u32,
            LbPolicy::RoundRobin => {
                let c = self.lb_cursor.entry(port.service).or_insert(0);
                let k = *c % count;
                *c = c.wrapping_add(1);
                k
            }
        };
        if local_only {
            self.healthy_nodes(sp)[k as usize]
        } else {
            k
        }
    }

    /// The nodes with a local endpoint of `sp`, in node order.
    fn healthy_nodes(&mut self, sp: u32) -> &[u32] {
        let cl = self.cluster;
        self.healthy.entry(sp).or_insert_with(|| {
            let mut v: Vec<u32> = cl.service_ports[sp as usize].local.keys().copied().collect();
            v.sort_unstable();
            v
        })
    }

    /// Sends `req`'s message along its connection, forward or back.
    fn send(&mut self, req: u32, phase: Phase, back: bool, bytes: u32, s: &mut Scheduler<Ev>) {
        let r = self.reqs.get_mut(req);
        r.phase = phase;
        let flow = r.flow as usize;
        let c = self.conns.get(r.conn_of(phase));
        let leg = if back { &c.rev } else { &c.fwd };
        let hops = &mut self.flows[flow].stats.hops;
        let delay = leg.walk(&self.params.datapath, bytes, |k, ns| hops[k as usize].add(ns));
        self.at(s, delay, Ev::Deliver { req });
    }

    fn send_request(&mut self, req: u32, s: &mut Scheduler<Ev>) {
        let bytes = self.flows[self.reqs.get(req).flow as usize].flow.request_bytes;
        self.send(req, Phase::Request, false, bytes, s);
    }

    /// Starts service of `req` on `server` now.
    fn start_service(&mut self, req: u32, server: u32, s: &mut Scheduler<Ev>) {
        let sv = &mut self.servers[server as usize];
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
        self.at(s, t, Ev::ServiceDone { req });
    }

    fn deliver(&mut self, req: u32, s: &mut Scheduler<Ev>) {
        let now = s.now();
        let r = self.reqs.get(req);
        let phase = r.phase;
        if r.abandoned && !phase.to_server() {
            return self.drop_req(req);
        }
        match phase {
            Phase::DnsQuery | Phase::Request | Phase::Upstream | Phase::DnsUpstream => {
                let (flow, conn) = (r.flow, r.conn_of(phase));
                let c = self.conns.get(conn);
                let (server, sp, ep, pod, src) = (c.server, c.hit_sp, c.ep, c.server_pod, c.src);
                if sp != NONE {
                    self.endpoint_hits[sp as usize][ep as usize] += 1;
                }
                if matches!(phase, Phase::Request | Phase::Upstream) {
                    *self.sources.entry((flow, pod, src)).or_insert(0) += 1;
                }
                let r = self.reqs.get_mut(req);
                r.phase = match phase {
                    Phase::DnsQuery => Phase::DnsAtServer,
                    Phase::Request => Phase::AtServer,
                    Phase::DnsUpstream => Phase::DnsUpAtServer,
                    _ => Phase::UpAtServer,
                };
                r.arrived = now;
                match self.servers[server as usize].fifo.acquire(req) {
                    Acquire::Granted => self.start_service(req, server, s),
                    Acquire::Queued => {}
                    Acquire::Rejected => {
                        // The server (or the controller's backend) answers
                        // 503; behind a controller it travels on from there.
                        let r = self.reqs.get_mut(req);
                        r.failure = Failure::QueueFull;
                        if phase == Phase::Upstream {
                            self.close_up(req);
                        }
                        self.send(req, Phase::ErrorReply, true, 0, s);
                    }
                }
            }
            Phase::DnsReply => {
                let flow = r.flow as usize;
                let took = now.since(r.mark).as_nanos();
                let dc = r.dns_conn;
                self.flows[flow].stats.hops[HopKind::Dns as usize].add(took);
                self.close_conn(dc);
                let r = self.reqs.get_mut(req);
                r.dns_conn = NONE;
                r.dns_query += 1;
                let plan = self.flows[flow].dns.as_ref().expect("DNS flow");
                if (r.dns_query as usize) < plan.queries.len() {
                    self.dns_query(req, s);
                } else if plan.answer.is_none() {
                    self.fail(req, Failure::Nxdomain, s);
                } else {
                    self.connect(req, s);
                }
            }
            Phase::Syn => {
                if self.conns.get(r.conn).server == NONE {
                    self.reqs.get_mut(req).failure = Failure::ConnectionRefused;
                    self.send(req, Phase::Rst, true, 0, s);
                } else {
                    self.send(req, Phase::SynAck, true, 0, s);
                }
            }
            Phase::SynAck => self.send_request(req, s),
            Phase::DnsUpReply => {
                // The cache keeps CoreDNS's answer, then answers the pod.
                let (node, name) = self.cache_key(req);
                let expires = now.as_nanos() + self.params.dns.cache_ttl_ns;
                self.dns_cache.insert((node, name), expires);
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
            Phase::DnsAtServer | Phase::AtServer | Phase::UpAtServer | Phase::DnsUpAtServer => {
                unreachable!("delivery in phase {phase:?}")
            }
        }
    }

    fn service_done(&mut self, req: u32, s: &mut Scheduler<Ev>) {
        let r = self.reqs.get(req);
        let phase = r.phase;
        let dns = phase == Phase::DnsAtServer;
        let server = self.conns.get(r.conn_of(phase)).server;
        if let Some(next) = self.servers[server as usize].fifo.release() {
            self.start_service(next, server, s);
        }
        let r = self.reqs.get(req);
        if r.abandoned {
            return self.drop_req(req);
        }
        if phase == Phase::UpAtServer {
            let bytes = self.flows[r.flow as usize].flow.response_bytes;
            self.send(req, Phase::UpResponse, true, bytes, s);
        } else if phase == Phase::DnsUpAtServer {
            let dp = &self.params.datapath;
            let wire = self.params.dns.response_bytes + dp.header_bytes;
            let delay = self.conns.get(r.up_conn).rev.walk_wire(dp, wire, |_, _| {});
            self.reqs.get_mut(req).phase = Phase::DnsUpReply;
            self.at(s, delay, Ev::Deliver { req });
        } else if self.servers[server as usize].kind == ServerKind::DnsCache {
            let key = self.cache_key(req);
            if self.dns_cache.get(&key).is_some_and(|&exp| exp > s.now().as_nanos()) {
                self.dns_answer(req, s);
            } else {
                self.dns_forward(req, s);
            }
        } else if self.servers[server as usize].kind == ServerKind::Ingress {
            self.upstream(req, s);
        } else if dns {
            let (dc, bytes) = (r.dns_conn, self.params.dns.response_bytes);
            let c = self.conns.get(dc);
            let dp = &self.params.datapath;
            let delay = c.rev.walk_wire(dp, bytes + dp.udp_header_bytes, |_, _| {});
            self.reqs.get_mut(req).phase = Phase::DnsReply;
            self.at(s, delay, Ev::Deliver { req });
        } else {
            let bytes = self.flows[r.flow as usize].flow.response_bytes;
            self.send(req, Phase::Response, true, bytes, s);
        }
    }

    fn timeout(&mut self, req: u32, gen: u32, s: &mut Scheduler<Ev>) {
        let Some(r) = self.reqs.try_get(req) else {
            return;
        };
        if r.gen != gen || r.abandoned {
            return;
        }
        if r.phase == Phase::Dropped {
            return; // its Deliver at this same instant ends it as no_local_endpoint
        }
        let (flow, slot) = (r.flow, r.slot);
        let st = &mut self.flows[flow as usize].stats;
        st.failures[Failure::Timeout as usize] += 1;
        st.last_ns = s.now().as_nanos();
        self.reqs.get_mut(req).abandoned = true;
        st.last_ns = s.now().as_nanos();
        self.next_for_slot(flow, slot, s);
        // A request waiting in a server queue stays there until served, as
        // the server does not know the client gave up; it is dropped then.
        // A request in flight is dropped when its message arrives.
    }

    /// A closed-loop slot whose request ended schedules its next request.
    fn next_for_slot(&mut self, flow: u32, slot: u32, s: &mut Scheduler<Ev>) {
        if slot == NONE {
            return;
        }
        let f = &mut self.flows[flow as usize];
        if let Arrivals::Closed { think, .. } = f.flow.arrivals {
            let t = think.sample(&mut f.rng);
            self.at(s, t, Ev::ClientReady { flow, slot });
        }
    }

    fn complete(&mut self, req: u32, s: &mut Scheduler<Ev>) {
        let now = s.now();
        let r = self.reqs.remove(req);
        let f = &mut self.flows[r.flow as usize];
        f.stats.completed += 1;
        f.stats.latency.record(now.since(r.start).as_nanos());
        f.stats.last_ns = now.as_nanos();
        if f.flow.keep_alive {
            let client = self.conns.get(r.conn).client;
            f.idle[client as usize].push(r.conn);
        } else {
            self.close_conn(r.conn);
        }
        self.next_for_slot(r.flow, r.slot, s);
    }

    fn fail(&mut self, req: u32, why: Failure, s: &mut Scheduler<Ev>) {
        let r = self.reqs.get(req);
        let (flow, slot) = (r.flow, r.slot);
        let st = &mut self.flows[flow as usize].stats;
        st.failures[why as usize] += 1;
        st.last_ns = s.now().as_nanos();
        self.drop_req(req);
        self.next_for_slot(flow, slot, s);
    }

    /// Frees a request and any connection it holds (never back to a pool).
    fn drop_req(&mut self, req: u32) {
        let r = self.reqs.remove(req);
        if r.conn != NONE {
            self.close_conn(r.conn);
        }
        if r.dns_conn != NONE {
            self.close_conn(r.dns_conn);
        }
        if r.up_conn != NONE {
            self.close_conn(r.up_conn);
        }
    }

    /// Frees the ingress controller's upstream connection of `req`.
    fn close_up(&mut self, req: u32) {
        let r = self.reqs.get_mut(req);
        let up = std::mem::replace(&mut r.up_conn, NONE);
        if up != NONE {
            self.close_conn(up);
        }
    }

    /// The ingress controller has parsed and routed `req`: proxy it to a
    /// backend endpoint (round robin per controller pod, over a kept-alive
    /// upstream connection straight to the pod IP, as ingress-nginx does),
    /// or answer 404 / 503 itself.
    fn upstream(&mut self, req: u32, s: &mut Scheduler<Ev>) {
        let cl = self.cluster;
        let r = self.reqs.get(req);
        let flow = r.flow as usize;
        let (controller, client_conn) = (self.conns.get(r.conn).server_pod, r.conn);
        let _ = client_conn;
        let Target::Ingress { backend, .. } = self.flows[flow].flow.target else {
            unreachable!("an ingress controller serves ingress flows")
        };
        let Some(sp) = backend else {
            self.reqs.get_mut(req).failure = Failure::NoRoute;
            return self.send(req, Phase::ErrorReply, true, 0, s);
        };
        let eps = &cl.service_ports[sp as usize].endpoints;
        if eps.is_empty() {
            self.reqs.get_mut(req).failure = Failure::NoEndpoints;
            return self.send(req, Phase::ErrorReply, true, 0, s);
        }
        let cursor = self.upstream_rr.entry((controller, sp)).or_insert(0);
        let i = *cursor % eps.len() as u32;
        *cursor = cursor.wrapping_add(1);
        let e = eps[i as usize];
        let (cnode, enode) = (cl.pods[controller as usize].node, cl.pods[e.pod as usize].node);
        let fwd = datapath::route(&self.params.datapath, Place::Pod { pod: controller, node: cnode }, e.pod, enode);
        if cl.pods[e.pod as usize].listens_on(e.port, Protocol::Tcp).is_none() {
            // nginx's upstream connect is refused: 502 to the client.
            self.reqs.get_mut(req).failure = Failure::ConnectionRefused;
            return self.send(req, Phase::ErrorReply, true, 0, s);
        }
        let server = self.server(e.pod, e.port, Protocol::Tcp);
        let up = self.conns.insert(Conn {
            fwd,
            rev: fwd.reversed(),
            server,
            server_pod: e.pod,
            sp: NONE,
            ep: i,
            hit_sp: sp,
            src: cl.pods[controller as usize].ip,
            client: NONE,
            pnode: cnode,
            entry: Entry::ClusterIp,
        });
        self.reqs.get_mut(req).up_conn = up;
        let bytes = self.flows[flow].flow.request_bytes;
        self.send(req, Phase::Upstream, false, bytes, s);
    }

    /// Frees a connection; the proxy that chose its endpoint hears of it.
    fn close_conn(&mut self, conn: u32) {
        let c = self.conns.remove(conn);
        if c.sp != NONE {
            self.proxy.closed(c.pnode, c.sp, c.entry, c.ep);
        }
    }
}
