//! Opening a connection: the proxy's decision (traffic policy, session
//! affinity, mode), the route, the first packet's cost, the load balancer.

use emu_engine::Scheduler;

use super::run::{external_ip, Conn, Decision, Ev, Phase, LOCALHOST};
use super::{FlowRt, LbPolicy, World, NONE};
use crate::addr::Ipv4;
use crate::cluster::{Protocol, TrafficPolicy};
use crate::datapath::{self, Cni, HopKind, Msg, Path, Place};
use crate::proxy::{Candidates, Dnat, Entry, FirstPacket, ProxyModel, Query};
use crate::traffic::{Client, Failure, Target};

impl World<'_> {
    /// Asks node `node`'s proxy for an endpoint of Service port `sp` for a
    /// new connection, applying the traffic policy and session affinity.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn decide(
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
        let policy = if entry.external() { svc.external_traffic_policy } else { svc.internal_traffic_policy };
        let candidates = match policy {
            TrafficPolicy::Cluster => Candidates::All(port.endpoints.len() as u32),
            TrafficPolicy::Local => Candidates::Subset(port.local_endpoints(node)),
        };
        if candidates.is_empty() {
            return Decision::Dropped;
        }
        let affinity = svc.affinity_timeout_ns.is_some();
        let q = Query { node, sp, entry, candidates, client_ip, dest_ip, affinity, now_ns: now };
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
    /// route, and sends the SYN.
    pub(super) fn connect(&mut self, req: u32, s: &mut Scheduler<Ev>) {
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
        let headless = sp != NONE && !cl.services[cl.service_ports[sp as usize].service as usize].has_cluster_ip();
        if headless {
            let eps = &cl.service_ports[sp as usize].endpoints;
            assert!(!eps.is_empty(), "a headless Service without endpoints is NXDOMAIN (dns::answer)");
            let i = self.flows[flow].rng.below(eps.len() as u64) as usize;
            headless_ep = i as u32;
            (direct_pod, direct_port) = (eps[i].pod, eps[i].port);
        }
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
        // With an eBPF CNI, pod traffic bypasses netfilter: no rule walk,
        // no conntrack entry.
        let netfilter = dp.cni != Cni::Ebpf;
        // First-packet work on the first and the second node the SYN meets.
        let mut extra = [0u64; 2];
        let (server_pod, server_port, ep, src, path, entry, snode);
        if sp == NONE {
            let pod = if direct_pod == NONE { client_pod } else { direct_pod };
            let node = cl.pods[pod as usize].node;
            path = Path::Route { from: place, to_pod: pod, to_node: node };
            let f = &mut self.flows[flow];
            if pod != client_pod && netfilter {
                f.stats.first_packet.record(self.proxy.miss().total_ns());
                extra[0] = Self::charge(hop, f, self.proxy.miss());
                if node != cnode {
                    extra[1] = Self::charge(hop, f, self.proxy.miss());
                }
            }
            snode = if pod == client_pod { NONE } else { node };
            // Only a `localhost` target is sent from 127.0.0.1. A pod
            // reaching its own IP goes through `lo` too, but the route's
            // preferred source is that address (`local <pod IP> dev lo src
            // <pod IP>`): the server sees the pod IP
            // (models/notes/source-address.md).
            src = if direct_pod == NONE { LOCALHOST } else { cip };
            (server_pod, server_port, ep, entry) = (pod, direct_port, headless_ep, Entry::ClusterIp);
        } else {
            entry = match place {
                Place::Pod { .. } => Entry::ClusterIp,
                Place::ViaLoadBalancer { .. } => Entry::LoadBalancer,
                _ => Entry::NodePort,
            };
            let svc = &cl.services[cl.service_ports[sp as usize].service as usize];
            let dest = match entry {
                Entry::ClusterIp => svc.cluster_ip.expect("not headless"),
                Entry::NodePort => cl.nodes[cnode as usize].ip,
                Entry::LoadBalancer => svc.load_balancer_ip.expect("via a load balancer"),
            };
            let d = match self.decide(flow, cnode, sp, entry, cip, dest, now) {
                Decision::Endpoint(d) => d,
                refused => {
                    // No endpoints: kube-proxy's filter rule REJECTs the
                    // first packet at the client's node; no destination
                    // (IPVS, every candidate of weight 0): ip_vs_leave
                    // answers ICMP port unreachable, which aborts the
                    // connect (tcp_v4_err). No local endpoint: the packet
                    // is dropped and the client waits out its timeout (SYN
                    // retransmissions are not modelled).
                    let f = &mut self.flows[flow];
                    let leg = datapath::to_node(dp, place);
                    let hops = &mut f.stats.hops;
                    let there = leg.idle_ns(dp, Msg::tcp(0), |k, ns| hops[k as usize].add(ns));
                    let miss = Self::charge(hop, f, self.proxy.miss());
                    let r = self.reqs.get_mut(req);
                    if refused == Decision::Dropped {
                        // Nothing comes back; the client gives up at its
                        // timeout, when this Deliver ends the request.
                        r.phase = Phase::Dropped;
                        r.failure = Failure::NoLocalEndpoint;
                        // (The SYN's trip `there` and `miss` are in the hop tallies.)
                        let left = (r.start.as_nanos() + self.flows[flow].flow.timeout_ns).saturating_sub(now);
                        self.at(s, left, Ev::Deliver { req });
                        return;
                    }
                    let hops = &mut self.flows[flow].stats.hops;
                    let back = leg.reversed().idle_ns(dp, Msg::tcp(0), |k, ns| hops[k as usize].add(ns));
                    r.phase = Phase::Reject;
                    r.failure =
                        if refused == Decision::NoDestination { Failure::NoDestination } else { Failure::NoEndpoints };
                    self.at(s, there + back + miss, Ev::Deliver { req });
                    return;
                }
            };
            let f = &mut self.flows[flow];
            f.stats.first_packet.record(d.cost.total_ns());
            extra[0] = Self::charge(hop, f, d.cost);
            let e = cl.service_ports[sp as usize].endpoints[d.endpoint as usize];
            let node = cl.pods[e.pod as usize].node;
            let at = &cl.nodes[cnode as usize];
            let local_policy = svc.external_traffic_policy == TrafficPolicy::Local;
            if e.pod == client_pod {
                // Hairpin: kube-proxy masquerades a pod reaching itself.
                path = Path::Hairpin { node: cnode };
                src = at.bridge_ip;
            } else {
                path = Path::Route { from: place, to_pod: e.pod, to_node: node };
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
            if node != cnode && netfilter {
                extra[1] = Self::charge(hop, f, self.proxy.miss());
            }
            (server_pod, server_port, ep, snode) = (e.pod, e.port, d.endpoint, node);
        }
        // Conntrack: an entry on each node whose netfilter sees the flow.
        let mut ct = [NONE; 2];
        if netfilter && snode != NONE {
            ct = [cnode, if snode != cnode { snode } else { NONE }];
            let full = ct
                .iter()
                .any(|&n| n != NONE && self.nodes[n as usize].conntrack.len(now) >= self.params.node.conntrack_max());
            if full {
                // Counted once, on the first full node the SYN meets.
                let max = self.params.node.conntrack_max();
                if let Some(&n) = ct.iter().find(|&&n| n != NONE && self.nodes[n as usize].conntrack.len(now) >= max) {
                    self.nodes[n as usize].conntrack.drops += 1;
                }
                // The SYN is dropped; the client retries until its timeout.
                let r = self.reqs.get_mut(req);
                r.phase = Phase::Dropped;
                r.failure = Failure::ConntrackFull;
                let left = (r.start.as_nanos() + self.flows[flow].flow.timeout_ns).saturating_sub(now);
                self.at(s, left, Ev::Deliver { req });
                return;
            }
            for &n in ct.iter().filter(|&&n| n != NONE) {
                self.nodes[n as usize].conntrack.open_tcp(now);
            }
        }
        self.flows[flow].stats.connections += 1;
        let server = if cl.pods[server_pod as usize].listens_on(server_port, Protocol::Tcp).is_some() {
            self.server(server_pod, server_port, Protocol::Tcp)
        } else {
            NONE
        };
        let c = self.conns.insert(Conn {
            path,
            server,
            server_pod,
            sp,
            ep,
            hit_sp: if headless { headless_sp } else { sp },
            src,
            client,
            pnode: cnode,
            entry,
            ct,
        });
        let r = self.reqs.get_mut(req);
        r.conn = c;
        r.phase = Phase::Syn;
        self.start_walk(req, c, false, Msg::tcp(0), extra, s);
    }

    /// The node the load balancer of Service port `sp` sends a new
    /// connection to at time `now`.
    pub(super) fn lb_pick(&mut self, flow: usize, sp: u32, now: u64) -> u32 {
        let cl = self.cluster;
        let port = &cl.service_ports[sp as usize];
        let svc = &cl.services[port.service as usize];
        let lb = &self.params.load_balancer;
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
    pub(super) fn healthy_nodes(&mut self, sp: u32) -> &[u32] {
        let cl = self.cluster;
        self.healthy.entry(sp).or_insert_with(|| {
            let mut v: Vec<u32> = cl.service_ports[sp as usize].local.keys().copied().collect();
            v.sort_unstable();
            v
        })
    }
}
