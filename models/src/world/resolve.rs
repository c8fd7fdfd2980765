//! The DNS exchange of a request: queries to CoreDNS through kube-dns,
//! or to the node's NodeLocal DNSCache, which forwards its misses.

use emu_engine::Scheduler;

use super::policy::Sender;
use super::run::{Conn, Decision, Ev, Phase};
use super::World;
use crate::cluster::Protocol;
use crate::datapath::{Msg, Path, Place};
use crate::ids::{ConnId, NodeId, ReqId};
use crate::proxy::{Entry, ProxyModel};
use crate::traffic::Failure;

impl World<'_> {
    /// The NodeLocal DNSCache key of `req`'s current query.
    pub(super) fn cache_key(&self, req: ReqId) -> (NodeId, u32) {
        let r = self.reqs.get(req);
        let (_, node) = self.client_pod(req);
        (node, self.flows[r.flow as usize].dns_ids[r.dns_query as usize])
    }

    /// Sends `req`'s DNS answer back to the pod that asked.
    pub(super) fn dns_answer(&mut self, req: ReqId, s: &mut Scheduler<Ev>) {
        let bytes = self.params.dns.response_bytes;
        self.send(req, Phase::DnsReply, true, bytes, s);
    }

    /// A NodeLocal DNSCache miss: the node forwards the query to CoreDNS
    /// through kube-dns over a kept-alive TCP connection.
    pub(super) fn dns_forward(&mut self, req: ReqId, s: &mut Scheduler<Ev>) {
        let (_, node) = self.client_pod(req);
        let flow = self.reqs.get(req).flow as usize;
        let cl = self.cluster;
        let svc = cl.dns_service.expect("validated: DNS enabled");
        let sp = cl.service_port(svc, 53, Protocol::Tcp).expect("kube-dns has 53/TCP");
        let node_ip = cl.nodes[node.index()].ip;
        let vip = cl.services[svc.index()].cluster_ip.expect("kube-dns has a ClusterIP");
        let Decision::Endpoint(d) = self.decide(flow, node, sp, Entry::ClusterIp, node_ip, vip, s.now().as_nanos())
        else {
            // kube-dns without an endpoint (only while CoreDNS is replaced):
            // the cache answers SERVFAIL.
            return self.fail(req, Failure::NoEndpoints, s);
        };
        if self.trace.is_some() && self.tracing(req).is_some() {
            let now = s.now().as_nanos();
            let text = "cache miss: forwarded to CoreDNS over the node's kept-alive TCP connection".to_string();
            self.trace_event(req, now, crate::world::trace::EventKind::Dns, Some(node), text);
            self.trace_decision(req, now, node, sp, Entry::ClusterIp, &d);
        }
        let ep = self.state.endpoint(cl, sp, d.endpoint);
        let ep_node = self.state.loc[ep.pod.index()].node;
        // The kept-alive connection exists only if CoreDNS's ingress
        // policies admit the node.
        let from = Sender { pod: None, src: node_ip, first: false, dns: true };
        if self.police(flow, from, ep.pod, ep.port, Protocol::Tcp).is_err() {
            // The proxy decided for nothing; the query to the cache is over.
            self.proxy.closed(node, sp, Entry::ClusterIp, d.endpoint, s.now().as_nanos());
            if let Some(dc) = self.reqs.get_mut(req).dns_conn.take() {
                self.close_conn(dc);
            }
            return self.query_lost(req, Failure::DnsPolicyDenied, s);
        }
        let path = self.path_to(Place::Host { node }, ep.pod, ep_node);
        let server = self.server(ep.pod, ep.port, Protocol::Tcp);
        let up = self.conns.insert(Conn {
            path,
            server: Some(server),
            server_pod: Some(ep.pod),
            sp: Some(sp),
            ep: Some(d.endpoint),
            hit_sp: Some(sp),
            src: node_ip,
            client: None,
            pnode: node,
            entry: Entry::ClusterIp,
            ct: [None; 2],
        });
        self.reqs.get_mut(req).up_conn = Some(up);
        // A kept-alive TCP connection: conntrack hits, no first-packet cost.
        let bytes = self.params.dns.query_bytes;
        self.send(req, Phase::DnsUpstream, false, bytes, s);
    }

    /// Sends one DNS query of request `req`: to the node's NodeLocal
    /// DNSCache when there is one, else to CoreDNS via kube-dns.
    pub(super) fn dns_query(&mut self, req: ReqId, s: &mut Scheduler<Ev>) {
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
        let src = self.state.loc[pod.index()].ip;
        let vip = cl.services[svc.index()].cluster_ip.expect("kube-dns has a ClusterIP");
        let now = s.now().as_nanos();
        let netfilter = self.params.datapath.cni != crate::datapath::Cni::Ebpf;
        // As for a SYN: the client node's conntrack before its proxy.
        if netfilter && self.conntrack_refuses(node, now) {
            return self.query_lost(req, Failure::ConntrackFull, s);
        }
        let udp_timeout = self.params.node.udp_timeout_ns;
        let kept = self.dns_sockets.get(&pod).filter(|&&(_, last)| now < last + udp_timeout).map(|&(ep, _)| ep);
        let decision = match kept {
            // The long-lived socket's conntrack entry still holds its DNAT.
            Some(ep) => Decision::Endpoint(crate::proxy::Dnat { endpoint: ep, cost: Default::default() }),
            None => self.decide(flow, node, sp, Entry::ClusterIp, src, vip, now),
        };
        let d = match decision {
            Decision::Endpoint(d) => d,
            // kube-dns without an endpoint (only while CoreDNS is replaced):
            // the query is refused and the resolver tries again.
            _ => return self.query_lost(req, Failure::NoEndpoints, s),
        };
        if self.params.dns.persistent_socket {
            self.dns_sockets.insert(pod, (d.endpoint, now));
        }
        if self.trace.is_some() && self.tracing(req).is_some() {
            self.trace_question(req, now, &format!("{vip}:53 (kube-dns)"));
            if kept.is_none() {
                self.trace_decision(req, now, node, sp, Entry::ClusterIp, &d);
            } else {
                let text = "the resolver's long-lived socket: its conntrack entry holds the DNAT".to_string();
                self.trace_event(req, now, crate::world::trace::EventKind::Conntrack, Some(node), text);
            }
        }
        let ep = self.state.endpoint(cl, sp, d.endpoint);
        let ep_node = self.state.loc[ep.pod.index()].node;
        if self.land(ep.pod) != super::fate::Landing::At(ep.pod) {
            // Rules not yet synced (or a socket's stale conntrack entry)
            // sent it to a CoreDNS pod that is gone (or whose node is
            // lost): no answer, the resolver asks again.
            if kept.is_none() {
                self.proxy.closed(node, sp, Entry::ClusterIp, d.endpoint, now);
            }
            return self.query_lost(req, Failure::Timeout, s);
        }
        let path = self.path_to(self.place_of(pod), ep.pod, ep_node);
        let mut extra = [d.cost.total_ns(), 0];
        if ep_node != node && netfilter {
            extra[1] = self.proxy.miss().total_ns();
        }
        // NetworkPolicy, for a new UDP flow (a long-lived socket's entry
        // passed when it was created).
        let from = Sender { pod: Some(pod), src, first: kept.is_none(), dns: true };
        match self.police(flow, from, ep.pod, ep.port, Protocol::Udp) {
            Ok([egress, ingress]) => {
                extra[0] += egress;
                extra[usize::from(ep_node != node)] += ingress;
            }
            Err(_) => {
                if kept.is_none() {
                    self.proxy.closed(node, sp, Entry::ClusterIp, d.endpoint, now);
                    self.dns_sockets.remove(&pod);
                }
                return self.query_lost(req, Failure::DnsPolicyDenied, s);
            }
        }
        // UDP conntrack entries on both nodes, expiring on their own.
        let udp = self.params.node.udp_timeout_ns;
        if netfilter {
            if ep_node != node && self.conntrack_refuses(ep_node, now) {
                self.proxy.closed(node, sp, Entry::ClusterIp, d.endpoint, now);
                return self.query_lost(req, Failure::ConntrackFull, s);
            }
            for &n in [node, ep_node].iter().take(if ep_node != node { 2 } else { 1 }) {
                self.nodes[n.index()].conntrack.open_udp(now, udp);
            }
        }
        let server = self.server(ep.pod, ep.port, Protocol::Udp);
        let c = self.conns.insert(Conn {
            path,
            server: Some(server),
            server_pod: Some(ep.pod),
            sp: Some(sp),
            ep: Some(d.endpoint),
            hit_sp: Some(sp),
            src,
            client: Some(client),
            pnode: node,
            entry: Entry::ClusterIp,
            ct: [None; 2],
        });
        self.send_query(req, c, extra, s);
    }

    /// Request `req`'s DNS query was dropped by a full conntrack table: the
    /// resolver sends it again after its `timeout` (`[node] dns_retry`, as
    /// for a query lost at a full queue), until the flow's timeout.
    pub(super) fn query_lost(&mut self, req: ReqId, why: Failure, s: &mut Scheduler<Ev>) {
        let now = s.now().as_nanos();
        let r = self.reqs.get_mut(req);
        r.failure = why;
        let f = &mut self.flows[r.flow as usize];
        let deadline = r.start.as_nanos() + f.flow.timeout_ns;
        let wait = self.params.node.dns_retry_ns;
        if now + wait < deadline {
            r.phase = Phase::QueryLost;
            f.stats.retransmits += 1;
            if self.trace.is_some() {
                self.trace_wait(req, now, wait, &format!("DNS query lost ({}): the resolver asks again", why.name()));
            }
            return self.at(s, wait, Ev::Retry { req });
        }
        r.phase = Phase::Dropped;
        if self.trace.is_some() {
            let text = format!("DNS query lost ({}): no time left to ask again", why.name());
            self.trace_wait(req, now, deadline.saturating_sub(now), &text);
        }
        self.at(s, deadline.saturating_sub(now), Ev::Deliver { req });
    }

    /// Starts DNS query `req` on connection `c` (first-packet work `extra`).
    fn send_query(&mut self, req: ReqId, c: ConnId, extra: [u64; 2], s: &mut Scheduler<Ev>) {
        let r = self.reqs.get_mut(req);
        r.dns_conn = Some(c);
        r.phase = Phase::DnsQuery;
        r.mark = s.now();
        let bytes = self.params.dns.query_bytes;
        self.start_walk(req, c, false, Msg { bytes, udp: true }, extra, s);
    }

    /// Sends `req`'s query to the cache on its own node (link-local,
    /// NOTRACK: no conntrack, no DNAT).
    pub(super) fn dns_to_cache(&mut self, req: ReqId, s: &mut Scheduler<Ev>) {
        let (pod, node) = self.client_pod(req);
        let flow = self.reqs.get(req).flow as usize;
        // The cache is no pod: only an ipBlock (or a rule without peers)
        // on port 53 lets a pod with egress policies reach it.
        let work = match self.police_egress_to(flow, pod, crate::dns::NODE_LOCAL_DNS_IP, 53, Protocol::Udp) {
            Ok(ns) => ns,
            Err(_) => return self.query_lost(req, Failure::DnsPolicyDenied, s),
        };
        if self.trace.is_some() && self.tracing(req).is_some() {
            self.trace_question(req, s.now().as_nanos(), "169.254.20.10:53 (NodeLocal DNSCache, NOTRACK)");
        }
        let server = self.cache_server(node);
        let path = Path::ToHost { from: self.place_of(pod), node };
        let client = self.reqs.get(req).client;
        let c = self.conns.insert(Conn {
            path,
            server: Some(server),
            server_pod: None,
            sp: None,
            ep: None,
            hit_sp: None,
            src: self.state.loc[pod.index()].ip,
            client: Some(client),
            pnode: node,
            entry: Entry::ClusterIp,
            ct: [None; 2],
        });
        self.send_query(req, c, [work, 0], s);
    }
}
