//! The DNS exchange of a request: queries to CoreDNS through kube-dns,
//! or to the node's NodeLocal DNSCache, which forwards its misses.

use emu_engine::Scheduler;

use super::policy::Sender;
use super::run::{Conn, Decision, Ev, Phase};
use super::trace::EventKind;
use super::{ServerKind, World};
use crate::cluster::Protocol;
use crate::datapath::{HopKind, Msg, Path, Place};
use crate::dns::{Answer, Resolver};
use crate::ids::{ConnId, NodeId, ReqId, ServerId};
use crate::proxy::{Entry, ProxyModel};
use crate::traffic::Failure;

impl World<'_> {
    /// The cache key of `req`'s current question(s) at its node: the
    /// name, and its record type when A and AAAA are asked apart (caches
    /// key answers by name and type; a message of both fills one entry).
    pub(super) fn cache_key(&self, req: ReqId) -> (NodeId, u32) {
        let r = self.reqs.get(req);
        let (_, node) = self.client_pod(req);
        let name = self.flows[r.flow as usize].dns_ids[r.dns_query as usize];
        (node, name * 2 + u32::from(r.dns_aaaa))
    }

    /// Sends `req`'s DNS answer back to the pod that asked.
    pub(super) fn dns_answer(&mut self, req: ReqId, s: &mut Scheduler<Ev>) {
        let bytes = self.params.dns.response_bytes * self.message_questions() as u32;
        self.send(req, Phase::DnsReply, true, bytes, s);
    }

    /// Questions in one DNS message: 2 when the resolver sends A and AAAA
    /// together, else 1.
    pub(super) fn message_questions(&self) -> u8 {
        if self.params.dns.resolver.parallel() {
            2
        } else {
            1
        }
    }

    /// The search-path candidate `req` is asking for.
    pub(super) fn current_try(&self, req: ReqId) -> &crate::dns::Try {
        let r = self.reqs.get(req);
        &self.flows[r.flow as usize].dns.as_ref().expect("a DNS flow").queries[r.dns_query as usize]
    }

    /// How long a cache keeps the answer `req` is getting: CoreDNS's
    /// record TTL, or the `cache 30` cap of a forwarded answer.
    pub(super) fn dns_ttl(&self, req: ReqId) -> u64 {
        if self.current_try(req).upstream {
            self.params.dns.upstream_cache_ttl_ns
        } else {
            self.params.dns.cache_ttl_ns
        }
    }

    /// CoreDNS (`server`) has answered `req`'s questions itself or from the
    /// upstream resolver: the answer goes back to the pod, or to the node's
    /// cache that forwarded them.
    pub(super) fn coredns_answer(&mut self, req: ReqId, s: &mut Scheduler<Ev>) {
        let bytes = self.params.dns.response_bytes * self.message_questions() as u32;
        if self.reqs.get(req).phase == Phase::DnsUpAtServer {
            self.send(req, Phase::DnsUpReply, true, bytes, s);
        } else {
            self.send(req, Phase::DnsReply, true, bytes, s);
        }
    }

    /// Whether CoreDNS `server` must ask the upstream resolver for `req`'s
    /// name (outside the cluster domain, or an ExternalName's CNAME target
    /// outside it) because its `cache` holds no answer at `now`.
    pub(super) fn needs_upstream(&self, req: ReqId, server: ServerId, now: u64) -> bool {
        let key = (server, self.cache_key(req).1);
        self.current_try(req).upstream && self.upstream_cache.get(&key).is_none_or(|&exp| exp <= now)
    }

    /// `server` (CoreDNS, or a node's cache) forwards `req`'s questions to
    /// the upstream resolver; they are answered after `upstream_latency`
    /// (the later of the questions' draws, as they are asked together).
    pub(super) fn forward_upstream(&mut self, req: ReqId, server: ServerId, s: &mut Scheduler<Ev>) {
        let questions = self.message_questions();
        let latency = self.params.dns.upstream_latency;
        let sv = &mut self.servers[server.index()];
        let wait = (0..questions).map(|_| latency.sample(&mut sv.rng)).max().unwrap_or(0);
        if self.trace.is_some() && self.tracing(req).is_some() {
            let text = format!("{} forwards it to the upstream resolver", self.servers[server.index()].kind.name());
            self.trace_wait(req, s.now().as_nanos(), wait, &text);
        }
        self.at(s, wait, Ev::Forwarded { req });
    }

    /// The upstream resolver's answer to `req`'s questions reached the
    /// server that forwarded them: it caches it and answers.
    pub(super) fn forwarded(&mut self, req: ReqId, s: &mut Scheduler<Ev>) {
        let r = self.reqs.get(req);
        let (phase, abandoned) = (r.phase, r.abandoned);
        let c = self.conns.get(r.conn_of(phase));
        let (server, pod) = (c.server.expect("served by its server"), c.server_pod);
        let fate = self.fate(pod);
        if let (Some(pod), Some(_)) = (pod, self.control.as_deref()) {
            self.request_done_at(pod, s);
        }
        if abandoned {
            return self.drop_req(req);
        }
        if !self.answered(req, phase, fate, s) {
            return;
        }
        let expires = s.now().as_nanos() + self.params.dns.upstream_cache_ttl_ns;
        let key = self.cache_key(req);
        if self.servers[server.index()].kind == ServerKind::DnsCache {
            self.dns_cache.insert(key, expires);
            self.dns_answer(req, s);
        } else {
            self.upstream_cache.insert((server, key.1), expires);
            self.coredns_answer(req, s);
        }
    }

    /// `req`'s DNS answer reached the pod: the resolver asks its next
    /// question, or the next candidate, or connects (or gives up).
    pub(super) fn dns_reply(&mut self, req: ReqId, s: &mut Scheduler<Ev>) {
        let now = s.now();
        if self.trace.is_some() && self.tracing(req).is_some() {
            self.trace_answer(req, now.as_nanos());
        }
        let r = self.reqs.get(req);
        let flow = r.flow as usize;
        let took = now.since(r.mark).as_nanos();
        let dc = r.dns_conn.expect("a DNS reply travels on its query's connection");
        self.flows[flow].stats.hops[HopKind::Dns as usize].add(took);
        let resolver = self.params.dns.resolver;
        if resolver.questions() == 2 && !resolver.parallel() && !r.dns_aaaa {
            // One question at a time: the candidate's AAAA comes next.
            self.reqs.get_mut(req).dns_aaaa = true;
            if resolver == Resolver::GlibcSingleRequest {
                // From the same socket: its conntrack entry holds the DNAT.
                if self.trace.is_some() && self.tracing(req).is_some() {
                    let to = if self.params.dns.node_local_cache {
                        "the same socket"
                    } else {
                        "the same socket (its conntrack entry holds the DNAT)"
                    };
                    self.trace_question(req, now.as_nanos(), to);
                }
                return self.send_query(req, dc, [0, 0], s);
            }
            self.close_conn(dc);
            self.reqs.get_mut(req).dns_conn = None;
            return self.dns_query(req, s);
        }
        self.close_conn(dc);
        let r = self.reqs.get_mut(req);
        (r.dns_conn, r.dns_aaaa) = (None, false);
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
            self.trace_event(req, now, EventKind::Dns, Some(node), text);
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
        let up = self.open_conn(Conn {
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
        let bytes = self.params.dns.query_bytes * self.message_questions() as u32;
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
                self.trace_event(req, now, EventKind::Conntrack, Some(node), text);
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
                self.conntrack[n.index()].open_udp(now, udp);
            }
        }
        let server = self.server(ep.pod, ep.port, Protocol::Udp);
        let c = self.open_conn(Conn {
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

    /// No answer comes to `req`'s DNS query (its server is gone, or the
    /// CoreDNS pod a node's cache forwarded it to): the connections of the
    /// exchange close and the resolver asks again after its timeout.
    pub(super) fn dns_silence(&mut self, req: ReqId, s: &mut Scheduler<Ev>) {
        self.close_up(req);
        if let Some(dc) = self.reqs.get_mut(req).dns_conn.take() {
            self.close_conn(dc);
        }
        self.query_lost(req, Failure::Timeout, s);
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
        let questions = self.message_questions();
        let r = self.reqs.get_mut(req);
        r.dns_conn = Some(c);
        r.phase = Phase::DnsQuery;
        r.mark = s.now();
        self.flows[r.flow as usize].stats.dns_questions += questions as u64;
        let bytes = self.params.dns.query_bytes * questions as u32;
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
        let c = self.open_conn(Conn {
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

    /// Records `req`'s current DNS question, sent to `server`.
    pub(super) fn trace_question(&mut self, req: ReqId, now: u64, server: &str) {
        let r = self.reqs.get(req);
        let plan = self.flows[r.flow as usize].dns.as_ref().expect("a DNS flow");
        let i = r.dns_query as usize;
        let text = format!(
            "query {} {}. (candidate {} of the search path) to {server}",
            self.question_types(req),
            plan.queries[i].name,
            i + 1
        );
        let node = self.client_pod(req).1;
        self.trace_event(req, now, EventKind::Dns, Some(node), text);
    }

    /// The record types `req`'s current DNS message asks for.
    fn question_types(&self, req: ReqId) -> &'static str {
        let resolver = self.params.dns.resolver;
        match (resolver.questions(), resolver.parallel(), self.reqs.get(req).dns_aaaa) {
            (1, _, _) => "A",
            (_, true, _) => "A and AAAA",
            (_, false, false) => "A",
            (_, false, true) => "AAAA",
        }
    }

    /// Records the answer to `req`'s current DNS question.
    pub(super) fn trace_answer(&mut self, req: ReqId, now: u64) {
        let cl = self.cluster;
        let r = self.reqs.get(req);
        let plan = self.flows[r.flow as usize].dns.as_ref().expect("a DNS flow");
        let t = &plan.queries[r.dns_query as usize];
        let name = &t.name;
        let types = self.question_types(req);
        let via = match (&t.cname, t.upstream) {
            (Some(c), true) => format!("CNAME {c}. (the upstream resolver's answer for it) "),
            (Some(c), false) => format!("CNAME {c}. "),
            (None, true) => "(the upstream resolver's) ".to_string(),
            (None, false) => String::new(),
        };
        let a = match &t.answer {
            Answer::Pod(_, pod) => format!("A {} (the pod's own name)", self.state.loc[pod.index()].ip),
            Answer::Service(svc) => match cl.services[svc.index()].cluster_ip {
                Some(ip) => format!("A {ip}"),
                None => "A (the headless Service's ready pod IPs)".to_string(),
            },
            Answer::External => "A (an address outside the cluster)".to_string(),
            Answer::NoData | Answer::NxDomain => String::new(),
        };
        let text = match (&t.answer, types) {
            (Answer::NxDomain, _) => format!("answer {name}.: {via}NXDOMAIN"),
            (Answer::NoData, _) => format!("answer {name}.: {via}no address (NOERROR, NODATA)"),
            (_, "A") => format!("answer {name}. {via}{a}"),
            (_, "AAAA") => format!("answer {name}. {via}AAAA: none (NOERROR, NODATA: an IPv4 cluster)"),
            _ => format!("answer {name}. {via}{a}; AAAA: none (NOERROR, NODATA: an IPv4 cluster)"),
        };
        let node = self.client_pod(req).1;
        self.trace_event(req, now, EventKind::Dns, Some(node), text);
    }
}
