//! The DNS exchange of a request: queries to CoreDNS through kube-dns,
//! or to the node's NodeLocal DNSCache, which forwards its misses.

use emu_engine::Scheduler;

use super::run::{Conn, Decision, Ev, Phase};
use super::{World, NONE};
use crate::cluster::Protocol;
use crate::datapath::{Msg, Path, Place};
use crate::proxy::{Entry, ProxyModel};

impl World<'_> {
    /// The NodeLocal DNSCache key of `req`'s current query.
    pub(super) fn cache_key(&self, req: u32) -> (u32, u32) {
        let r = self.reqs.get(req);
        let (_, node) = self.client_pod(req);
        (node, self.flows[r.flow as usize].dns_ids[r.dns_query as usize])
    }

    /// Sends `req`'s DNS answer back to the pod that asked.
    pub(super) fn dns_answer(&mut self, req: u32, s: &mut Scheduler<Ev>) {
        let bytes = self.params.dns.response_bytes;
        self.send(req, Phase::DnsReply, true, bytes, s);
    }

    /// A NodeLocal DNSCache miss: the node forwards the query to CoreDNS
    /// through kube-dns over a kept-alive TCP connection.
    pub(super) fn dns_forward(&mut self, req: u32, s: &mut Scheduler<Ev>) {
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
        let path = Path::Route { from: Place::Host { node }, to_pod: ep.pod, to_node: ep_node };
        let server = self.server(ep.pod, ep.port, Protocol::Tcp);
        let up = self.conns.insert(Conn {
            path,
            server,
            server_pod: ep.pod,
            sp,
            ep: d.endpoint,
            hit_sp: sp,
            src: node_ip,
            client: NONE,
            pnode: node,
            entry: Entry::ClusterIp,
            ct: [NONE; 2],
        });
        self.reqs.get_mut(req).up_conn = up;
        // A kept-alive TCP connection: conntrack hits, no first-packet cost.
        let bytes = self.params.dns.query_bytes;
        self.send(req, Phase::DnsUpstream, false, bytes, s);
    }

    /// Sends one DNS query of request `req`: to the node's NodeLocal
    /// DNSCache when there is one, else to CoreDNS via kube-dns.
    pub(super) fn dns_query(&mut self, req: u32, s: &mut Scheduler<Ev>) {
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
        let path = Path::Route { from: Place::Pod { pod, node }, to_pod: ep.pod, to_node: ep_node };
        let netfilter = self.params.datapath.cni != crate::datapath::Cni::Ebpf;
        let mut extra = [d.cost.total_ns(), 0];
        if ep_node != node && netfilter {
            extra[1] = self.proxy.miss().total_ns();
        }
        // UDP conntrack entries on both nodes, expiring on their own.
        let now = s.now().as_nanos();
        let (max, udp) = (self.params.node.conntrack_max(), self.params.node.udp_timeout_ns);
        if netfilter {
            let nodes = [node, if ep_node != node { ep_node } else { NONE }];
            let full = nodes.iter().any(|&n| n != NONE && self.nodes[n as usize].conntrack.len(now) >= max);
            if full {
                if let Some(&n) = nodes.iter().find(|&&n| n != NONE && self.nodes[n as usize].conntrack.len(now) >= max)
                {
                    self.nodes[n as usize].conntrack.drops += 1;
                }
                let r = self.reqs.get_mut(req);
                r.phase = Phase::Dropped;
                r.failure = crate::traffic::Failure::ConntrackFull;
                let left = (r.start.as_nanos() + self.flows[flow].flow.timeout_ns).saturating_sub(now);
                return self.at(s, left, Ev::Deliver { req });
            }
            for &n in nodes.iter().filter(|&&n| n != NONE) {
                self.nodes[n as usize].conntrack.open_udp(now, udp);
            }
        }
        let server = self.server(ep.pod, ep.port, Protocol::Udp);
        let c = self.conns.insert(Conn {
            path,
            server,
            server_pod: ep.pod,
            sp,
            ep: d.endpoint,
            hit_sp: sp,
            src,
            client,
            pnode: node,
            entry: Entry::ClusterIp,
            ct: [NONE; 2],
        });
        self.send_query(req, c, extra, s);
    }

    /// Starts DNS query `req` on connection `c` (first-packet work `extra`).
    fn send_query(&mut self, req: u32, c: u32, extra: [u64; 2], s: &mut Scheduler<Ev>) {
        let r = self.reqs.get_mut(req);
        r.dns_conn = c;
        r.phase = Phase::DnsQuery;
        r.mark = s.now();
        let bytes = self.params.dns.query_bytes;
        self.start_walk(req, c, false, Msg { bytes, udp: true }, extra, s);
    }

    /// Sends `req`'s query to the cache on its own node (link-local,
    /// NOTRACK: no conntrack, no DNAT).
    pub(super) fn dns_to_cache(&mut self, req: u32, s: &mut Scheduler<Ev>) {
        let (pod, node) = self.client_pod(req);
        let server = self.cache_server(node);
        let path = Path::ToHost { node };
        let client = self.reqs.get(req).client;
        let c = self.conns.insert(Conn {
            path,
            server,
            server_pod: NONE,
            sp: NONE,
            ep: NONE,
            hit_sp: NONE,
            src: self.cluster.pods[pod as usize].ip,
            client,
            pnode: node,
            entry: Entry::ClusterIp,
            ct: [NONE; 2],
        });
        self.send_query(req, c, [0, 0], s);
    }
}
