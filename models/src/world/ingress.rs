//! The ingress controller's side of a request: routing and proxying to a
//! backend pod over a kept-alive upstream connection.

use emu_engine::Scheduler;

use super::run::{Conn, Ev, Phase};
use super::World;
use crate::cluster::Protocol;
use crate::datapath::Place;
use crate::ids::ReqId;
use crate::proxy::Entry;
use crate::traffic::{Failure, Target};

/// ingress-nginx's `proxy-connect-timeout` default [ns]: 60 s (nginx's
/// `proxy_connect_timeout`).
const NGINX_CONNECT_TIMEOUT_NS: u64 = 60_000_000_000;

impl World<'_> {
    /// Frees the ingress controller's upstream connection of `req`.
    pub(super) fn close_up(&mut self, req: ReqId) {
        let r = self.reqs.get_mut(req);
        if let Some(up) = r.up_conn.take() {
            self.close_conn(up);
        }
    }

    /// The ingress controller has parsed and routed `req`: proxy it to a
    /// backend endpoint (round robin per controller pod, over a kept-alive
    /// upstream connection straight to the pod IP, as ingress-nginx does),
    /// or answer 404 / 503 itself.
    pub(super) fn upstream(&mut self, req: ReqId, s: &mut Scheduler<Ev>) {
        let cl = self.cluster;
        let r = self.reqs.get(req);
        let flow = r.flow as usize;
        let controller =
            self.conns.get(r.conn.expect("the request's connection")).server_pod.expect("the controller is a pod");
        // A request that reached the controller some other way (its
        // Service's ClusterIP or load balancer) carries no routable host:
        // the controller's default 404.
        let backend = match self.flows[flow].flow.target {
            Target::Ingress { backend, .. } => backend,
            _ => None,
        };
        let Some(sp) = backend else {
            self.reqs.get_mut(req).failure = Failure::NoRoute;
            return self.send(req, Phase::ErrorReply, true, 0, s);
        };
        // ingress-nginx watches the slices itself: the latest ready endpoints.
        let eps = self.state.at(cl, sp, u64::MAX).cluster();
        if eps.is_empty() {
            self.reqs.get_mut(req).failure = Failure::NoEndpoints;
            return self.send(req, Phase::ErrorReply, true, 0, s);
        }
        let cursor = self.upstream_rr.entry((controller, sp)).or_insert(0);
        let i = *cursor % eps.len();
        *cursor = cursor.wrapping_add(1);
        let ep = eps.get(i);
        let e = self.state.endpoint(cl, sp, ep);
        let (cloc, eloc) = (self.state.loc[controller.index()], self.state.loc[e.pod.index()]);
        let cnode = cloc.node;
        let path = self.path_to(Place::Pod { pod: controller, node: cnode }, e.pod, eloc.node);
        match self.land(e.pod) {
            super::fate::Landing::At(p) if p == e.pod => {}
            super::fate::Landing::Lost => return self.vanish(req),
            _ => {
                // The backend is gone: nginx's upstream connect fails, 502.
                self.reqs.get_mut(req).failure = Failure::HostUnreachable;
                return self.send(req, Phase::ErrorReply, true, 0, s);
            }
        }
        // The kept-alive upstream connection exists only if the backend's
        // policies (and the controller's) admit it: else nginx's connect
        // goes unanswered and it answers 504 after proxy_connect_timeout
        // (60 s by default), unless the client gives up first.
        let from = super::policy::Sender { pod: Some(controller), src: cloc.ip, first: false, dns: false };
        if self.police(flow, from, e.pod, e.port, Protocol::Tcp).is_err() {
            let now = s.now().as_nanos();
            let r = self.reqs.get_mut(req);
            let deadline = r.start.as_nanos() + self.flows[flow].flow.timeout_ns;
            (r.phase, r.failure) = (Phase::Dropped, Failure::PolicyDenied);
            let end = deadline.min(now + NGINX_CONNECT_TIMEOUT_NS).max(now);
            return self.at(s, end - now, Ev::Deliver { req });
        }
        if self.spec_pod(e.pod).listens_on(e.port, Protocol::Tcp).is_none()
            || !self.accepting(e.pod, s.now().as_nanos())
        {
            // nginx's upstream connect is refused: 502 to the client.
            self.reqs.get_mut(req).failure = Failure::ConnectionRefused;
            return self.send(req, Phase::ErrorReply, true, 0, s);
        }
        let server = self.server(e.pod, e.port, Protocol::Tcp);
        let up = self.open_conn(Conn {
            path,
            server: Some(server),
            server_pod: Some(e.pod),
            sp: None,
            ep: Some(ep),
            hit_sp: Some(sp),
            src: cloc.ip,
            client: None,
            pnode: cnode,
            entry: Entry::ClusterIp,
            ct: [None; 2],
        });
        self.reqs.get_mut(req).up_conn = Some(up);
        if self.trace.is_some() && self.tracing(req).is_some() {
            let text = format!(
                "the ingress controller {} routes to {} endpoint {}:{} (round robin, kept-alive upstream connection)",
                self.pod_key(controller),
                crate::proxy::iptables_save::port_name(cl, sp),
                eloc.ip,
                e.port
            );
            self.trace_event(req, s.now().as_nanos(), super::trace::EventKind::Proxy, Some(cnode), text);
        }
        let bytes = self.flows[flow].flow.request_bytes;
        self.send(req, Phase::Upstream, false, bytes, s);
    }
}
