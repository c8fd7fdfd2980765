//! Pods: the workload controller (rollouts, scaling, replacements), each
//! pod's start, readiness probe, deletion, SIGTERM, drain and SIGKILL, and
//! host-local IPAM.

use emu_engine::Scheduler;

use super::*;

impl World<'_> {
    /// Notes step `what` of `pod`'s life now (`pods.csv`).
    pub(in crate::world) fn step(&mut self, pod: PodId, what: &'static str, s: &Scheduler<Ev>) {
        let now = s.now().as_nanos();
        self.ctl().steps.push((now, pod, what));
    }

    /// The pods on `node` that are not being deleted, in id order.
    pub(in crate::world) fn pods_on(&self, node: NodeId) -> Vec<PodId> {
        let ctl = self.control.as_ref().unwrap();
        (0..ctl.pods.len() as u32)
            .map(PodId::new)
            .filter(|&p| ctl.pods[p.index()].active() && self.state.loc[p.index()].node == node)
            .collect()
    }

    /// Brings workload `w` towards its desired state: a rolling update
    /// while pods of older templates remain, else the ReplicaSet's
    /// scale up or down.
    pub(in crate::world) fn reconcile(&mut self, w: u32, s: &mut Scheduler<Ev>) {
        let cl = self.cluster;
        let ctl = self.ctl();
        let wl = &ctl.workloads[w as usize];
        let (gen, desired, cause) = (wl.gen, wl.desired, wl.cause);
        let mut c = rollout::Counts { desired, ..Default::default() };
        let active: Vec<PodId> = wl.pods.iter().copied().filter(|p| ctl.pods[p.index()].active()).collect();
        for &p in &active {
            let pr = &ctl.pods[p.index()];
            if pr.gen == gen {
                c.new += 1;
                c.new_available += pr.available as u32;
            } else {
                c.old += 1;
                c.old_available += pr.available as u32;
            }
        }
        let (create, delete_old, delete_new) = if c.old > 0 {
            let (surge, unavailable) = rollout::fenceposts(&cl.workloads[w as usize].lifecycle, desired);
            let (cr, del) = rollout::step(c, surge, unavailable);
            (cr, del, c.new.saturating_sub(desired))
        } else {
            (desired.saturating_sub(c.new), 0, c.new.saturating_sub(desired))
        };
        // Victims: unavailable pods first, then the newest
        // (ActivePodsWithRanks: not ready before ready, newer before older).
        let mut victims = Vec::new();
        for (old, n) in [(true, delete_old), (false, delete_new)] {
            let mut pool: Vec<PodId> =
                active.iter().copied().filter(|p| (ctl.pods[p.index()].gen != gen) == old).collect();
            pool.sort_by_key(|p| (ctl.pods[p.index()].available, std::cmp::Reverse(p.get())));
            victims.extend(pool.into_iter().take(n as usize));
        }
        for p in victims {
            self.delete_pod(p, cause, s);
        }
        for _ in 0..create {
            self.create_pod(w, s);
        }
    }

    /// Creates a pod of workload `w`'s current template: scheduled to a
    /// node now, started after the sandbox and container start times.
    pub(in crate::world) fn create_pod(&mut self, w: u32, s: &mut Scheduler<Ev>) {
        let cl = self.cluster;
        let pinned = cl.workloads[w as usize].pinned.then(|| cl.pods[cl.workloads[w as usize].pods[0].index()].node);
        let node = match pinned {
            // `node` (nodeName) or `ip`: its replacements go to that node.
            Some(n) => Some(n).filter(|n| {
                let c = &self.control.as_deref().expect("a changing cluster").nodes[n.index()];
                c.alive && c.ready
            }),
            None => self.schedule_node(w),
        };
        let Some(node) = node else {
            return; // no schedulable node: the pod stays Pending (not modelled further)
        };
        let ctl = self.ctl();
        let wl = &mut ctl.workloads[w as usize];
        let (gen, cause) = (wl.gen, wl.cause);
        let name = format!("{}-{}", cl.workloads[w as usize].name, wl.named);
        wl.named += 1;
        let proto = cl.workloads[w as usize].pods[0];
        let id = PodId::new(ctl.pods.len() as u32);
        wl.pods.push(id);
        ctl.names.push(name);
        ctl.created += 1;
        if let Some(st) = ctl.stats.get_mut(cause as usize) {
            st.created += 1;
        }
        ctl.pods.push(PodRt {
            proto,
            workload: w,
            gen,
            cause,
            state: PodState::Starting,
            ready: false,
            available: false,
            cond_ns: s.now().as_nanos(),
            probe_run: 0,
            inflight: 0,
            slice_pending: false,
            eps: Vec::new(),
        });
        let start = ctl.params.sandbox.sample(&mut ctl.rng) + ctl.params.container_start.sample(&mut ctl.rng);
        self.state.loc.push(crate::world::live::PodLoc { node, ip: crate::addr::Ipv4(0) });
        // Its endpoints: one per (Service port, target port) of the
        // workload, appended with new ids, not yet listed.
        let members = self.ctl().members[w as usize].clone();
        let mut eps = Vec::with_capacity(members.len());
        for (sp, port) in members {
            let ep = EpId::new(self.state.endpoints_ever(cl, sp) as u32);
            let weight = cl.pods[proto.index()].weight;
            let t = self.state.table(cl, sp);
            t.extra.push(crate::cluster::Endpoint { pod: id, port, weight });
            t.cond.push(Cond::default());
            self.endpoint_hits[sp.index()].push(0);
            eps.push((sp, ep));
        }
        self.ctl().pods[id.index()].eps = eps;
        self.step(id, "scheduled", s);
        self.at(s, start, Ev::PodStarted { pod: id });
    }

    /// The node a new pod goes to: the placement policy over schedulable
    /// nodes (alive, Ready, not cordoned, with a free address).
    pub(in crate::world) fn schedule_node(&mut self, w: u32) -> Option<NodeId> {
        let cl = self.cluster;
        let n = cl.nodes.len() as u64;
        // The scheduler's NodePorts filter, for a hostNetwork workload: not
        // on a node where one of its own pods (not yet gone) binds the same
        // ports. Other workloads' host ports are checked at build only.
        let host = cl.pods[cl.workloads[w as usize].pods[0].index()].host_network;
        let taken: Vec<NodeId> = if host {
            let ctl = self.control.as_deref().expect("a changing cluster");
            ctl.workloads[w as usize]
                .pods
                .iter()
                .filter(|p| ctl.pods[p.index()].state != PodState::Gone)
                .map(|p| self.state.loc[p.index()].node)
                .collect()
        } else {
            Vec::new()
        };
        let ctl = self.ctl();
        for _ in 0..n {
            let k = match cl.placement {
                crate::cluster::Placement::RoundRobin => {
                    let k = ctl.next_rr % n;
                    ctl.next_rr += 1;
                    k
                }
                crate::cluster::Placement::Random => ctl.rng.below(n),
            };
            let node = &ctl.nodes[k as usize];
            if node.alive && node.ready && !node.cordoned && !taken.contains(&NodeId::new(k as u32)) {
                return Some(NodeId::new(k as u32));
            }
        }
        None
    }

    /// Pod `pod`'s sandbox and containers are up: it gets its IP (CNI
    /// ADD), its application starts, and its readiness is probed.
    pub(in crate::world) fn pod_started(&mut self, pod: PodId, s: &mut Scheduler<Ev>) {
        let now = s.now().as_nanos();
        let cl = self.cluster;
        let node = self.state.loc[pod.index()].node;
        if !self.ctl().nodes[node.index()].alive || self.ctl().pods[pod.index()].state != PodState::Starting {
            return;
        }
        if self.spec_pod(pod).host_network {
            // The node's network namespace: no CNI ADD, the node's address.
            self.state.loc[pod.index()].ip = cl.nodes[node.index()].ip;
        } else {
            let ip = self.allocate_ip(node);
            let Some(ip) = ip else {
                // The node's pod CIDR is full: the sandbox fails (not retried).
                self.ctl().pods[pod.index()].state = PodState::Gone;
                return;
            };
            self.state.loc[pod.index()].ip = ip;
            self.state.ip_owner.insert(ip, Some(pod));
        }
        self.step(pod, "started", s);
        let w = self.ctl().pods[pod.index()].workload as usize;
        let lc = &cl.workloads[w].lifecycle;
        let app = lc.app_start.sample(&mut self.ctl().rng);
        let listen_ns = now + app;
        let ctl = self.ctl();
        ctl.pods[pod.index()].state = PodState::Running { listen_ns };
        match &lc.readiness {
            None => {
                // No probe: Ready once the containers run.
                self.set_ready(pod, true, now, s);
            }
            Some(p) => {
                let first = p.initial_delay_ns;
                self.slice_update(pod, now, s); // listed, not ready
                self.at(s, first, Ev::Probe { pod });
            }
        }
    }

    /// Node `node`'s host-local allocator. Every node's is built on the
    /// first use of any, in one pass over the pods that hold addresses.
    fn ipam(&mut self, node: NodeId) -> &mut Ipam {
        let cl = self.cluster;
        if self.ctl().nodes[node.index()].ipam.is_none() {
            let mut taken: Vec<Vec<u32>> = vec![Vec::new(); cl.nodes.len()];
            for (p, l) in self.state.loc.iter().enumerate() {
                if l.ip.0 != 0 && self.state.pod_by_ip(cl, l.ip) == Some(PodId::from_index(p)) {
                    taken[l.node.index()].push(cl.nodes[l.node.index()].pod_cidr.offset(l.ip) as u32);
                }
            }
            let ctl = self.control.as_deref_mut().expect("a changing cluster");
            for (n, t) in taken.into_iter().enumerate() {
                let size = cl.nodes[n].pod_cidr.size() as u32;
                ctl.nodes[n].ipam.get_or_insert_with(|| Ipam::new(size, t));
            }
        }
        self.ctl().nodes[node.index()].ipam.as_mut().expect("built above")
    }

    fn allocate_ip(&mut self, node: NodeId) -> Option<crate::addr::Ipv4> {
        let off = self.ipam(node).allocate()?;
        Some(self.cluster.nodes[node.index()].pod_cidr.nth(off as u64))
    }

    /// A readiness probe of `pod`.
    pub(in crate::world) fn probe(&mut self, pod: PodId, s: &mut Scheduler<Ev>) {
        let now = s.now().as_nanos();
        let cl = self.cluster;
        let pr = &self.ctl().pods[pod.index()];
        let w = pr.workload as usize;
        let Some(p) = cl.workloads[w].lifecycle.readiness.clone() else { return };
        let ok = match pr.state {
            PodState::Running { listen_ns } => now >= listen_ns,
            PodState::Terminating { sigterm_ns, .. } => now < sigterm_ns,
            _ => return,
        };
        let ready = pr.ready;
        let node = self.state.loc[pod.index()].node;
        let alive = self.ctl().nodes[node.index()].alive;
        if !alive {
            return;
        }
        let pr = &mut self.ctl().pods[pod.index()];
        if ok != ready {
            pr.probe_run += 1;
        } else {
            pr.probe_run = 0;
        }
        let threshold = if ready { p.failure_threshold } else { p.success_threshold };
        if ok != ready && pr.probe_run >= threshold {
            pr.probe_run = 0;
            self.set_ready(pod, ok, now, s);
        }
        // Probing goes on while the pod may still change: until Ready, and
        // during termination until it fails.
        let pr = &self.ctl().pods[pod.index()];
        let terminating = matches!(pr.state, PodState::Terminating { .. });
        if (!pr.ready && pr.active()) || (pr.ready && terminating) {
            self.at(s, p.period_ns, Ev::Probe { pod });
        }
    }

    /// The kubelet reports `pod` Ready (or not).
    pub(in crate::world) fn set_ready(&mut self, pod: PodId, ready: bool, now: u64, s: &mut Scheduler<Ev>) {
        let cl = self.cluster;
        self.step(pod, if ready { "ready" } else { "not_ready" }, s);
        let pr = &mut self.ctl().pods[pod.index()];
        pr.ready = ready;
        if !ready {
            pr.available = false;
        }
        let w = pr.workload;
        let active = pr.active();
        self.slice_update(pod, now, s);
        if ready && active {
            let min_ready = cl.workloads[w as usize].lifecycle.min_ready_ns;
            self.at(s, min_ready, Ev::Available { pod });
        }
    }

    /// `pod` has been Ready for minReadySeconds.
    pub(in crate::world) fn available(&mut self, pod: PodId, s: &mut Scheduler<Ev>) {
        let pr = &mut self.ctl().pods[pod.index()];
        if !pr.ready || !pr.active() || pr.available {
            return;
        }
        pr.available = true;
        let w = pr.workload;
        self.reconcile(w, s);
    }

    /// Deletes `pod` gracefully: its endpoints turn terminating, the
    /// preStop hook runs, then SIGTERM; SIGKILL at the grace period's end.
    pub(in crate::world) fn delete_pod(&mut self, pod: PodId, cause: u32, s: &mut Scheduler<Ev>) {
        let now = s.now().as_nanos();
        let cl = self.cluster;
        let pr = &self.ctl().pods[pod.index()];
        if !pr.active() {
            return;
        }
        let lc = &cl.workloads[pr.workload as usize].lifecycle;
        let (pre_stop, grace) = (lc.pre_stop_ns.min(lc.grace_ns), lc.grace_ns);
        let started = matches!(pr.state, PodState::Running { .. });
        let pr = &mut self.ctl().pods[pod.index()];
        pr.cause = cause;
        pr.available = false;
        if let Some(st) = self.ctl().stats.get_mut(cause as usize) {
            st.deleted += 1;
        }
        if !started {
            // Not started yet: nothing to stop.
            self.ctl().pods[pod.index()].state = PodState::Gone;
            return;
        }
        self.ctl().pods[pod.index()].state = PodState::Terminating { sigterm_ns: now + pre_stop, kill_ns: now + grace };
        self.step(pod, "deleted", s);
        self.slice_update(pod, now, s);
        let node = self.state.loc[pod.index()].node;
        if !self.ctl().nodes[node.index()].alive {
            // Evicted from a lost node: no kubelet runs its shutdown; it
            // stays terminating (its workload replaces it elsewhere).
            return;
        }
        self.at(s, pre_stop, Ev::Sigterm { pod });
        self.at(s, grace, Ev::Kill { pod });
    }

    /// SIGTERM reaches `pod`'s application: it stops accepting new
    /// connections and exits once its in-flight requests are done.
    pub(in crate::world) fn sigterm(&mut self, pod: PodId, s: &mut Scheduler<Ev>) {
        if matches!(self.ctl().pods[pod.index()].state, PodState::Terminating { .. }) {
            self.step(pod, "sigterm", s);
        }
        let pr = &self.ctl().pods[pod.index()];
        if matches!(pr.state, PodState::Terminating { .. }) && pr.inflight == 0 {
            self.pod_exit(pod, s);
        }
    }

    /// The grace period of `pod` is over: SIGKILL.
    pub(in crate::world) fn kill(&mut self, pod: PodId, s: &mut Scheduler<Ev>) {
        if matches!(self.ctl().pods[pod.index()].state, PodState::Terminating { .. }) {
            self.step(pod, "sigkill", s);
            self.pod_exit(pod, s);
        }
    }

    /// A request at one of `pod`'s servers finished: a terminating
    /// application whose last one it was exits.
    pub(in crate::world) fn request_done_at(&mut self, pod: PodId, s: &mut Scheduler<Ev>) {
        let now = s.now().as_nanos();
        let pr = &mut self.ctl().pods[pod.index()];
        pr.inflight = pr.inflight.saturating_sub(1);
        if matches!(pr.state, PodState::Gone | PodState::Exited) {
            return;
        }
        if let PodState::Terminating { sigterm_ns, .. } = pr.state {
            if pr.inflight == 0 && now >= sigterm_ns {
                self.pod_exit(pod, s);
            }
        }
    }

    /// `pod`'s application exited (or was killed): nothing listens any
    /// more, its containers are not ready; the sandbox (and its address)
    /// stays until the kubelet tears it down.
    pub(in crate::world) fn pod_exit(&mut self, pod: PodId, s: &mut Scheduler<Ev>) {
        let now = s.now().as_nanos();
        let teardown = self.ctl().params.sandbox_teardown_ns;
        let pr = &mut self.ctl().pods[pod.index()];
        if matches!(pr.state, PodState::Exited | PodState::Gone) {
            return;
        }
        pr.state = PodState::Exited;
        pr.ready = false;
        self.step(pod, "exited", s);
        self.slice_update(pod, now, s);
        self.at(s, teardown, Ev::Teardown { pod });
    }

    /// `pod`'s sandbox is torn down: CNI DEL frees its IP (on a running
    /// node), its endpoints leave the slices, its workload may replace it.
    pub(in crate::world) fn pod_gone(&mut self, pod: PodId, s: &mut Scheduler<Ev>) {
        let now = s.now().as_nanos();
        let cl = self.cluster;
        let loc = self.state.loc[pod.index()];
        self.step(pod, "gone", s);
        if self.ctl().nodes[loc.node.index()].alive && loc.ip.0 != 0 && !self.spec_pod(pod).host_network {
            let off = cl.nodes[loc.node.index()].pod_cidr.offset(loc.ip) as u32;
            self.ipam(loc.node).release(off);
            self.state.ip_owner.insert(loc.ip, None);
        }
        self.ctl().pods[pod.index()].state = PodState::Gone;
        self.slice_update(pod, now, s);
        let w = self.ctl().pods[pod.index()].workload;
        self.reconcile(w, s);
    }
}
