//! From a pod's condition to every node's rules: the EndpointSlice
//! controller's updates (one global version each), the watch to each
//! kube-proxy, and its sync loop (minSyncPeriod, syncPeriod, full syncs,
//! the duration of a sync per mode).

use emu_engine::Scheduler;

use super::*;

impl World<'_> {
    /// `pod`'s conditions changed at `now`: its EndpointSlices are updated
    /// after the controller's delay.
    pub(in crate::world) fn slice_update(&mut self, pod: PodId, now: u64, s: &mut Scheduler<Ev>) {
        let ctl = self.ctl();
        let pr = &mut ctl.pods[pod.index()];
        pr.cond_ns = now;
        if pr.eps.is_empty() || pr.slice_pending {
            return;
        }
        pr.slice_pending = true;
        let d = ctl.params.endpointslice_delay.sample(&mut ctl.rng);
        self.at(s, d, Ev::SliceSync { pod });
    }

    /// The EndpointSlice controller writes `pod`'s endpoints' current
    /// conditions: one new version for the ports that changed.
    pub(in crate::world) fn slice_sync(&mut self, pod: PodId, s: &mut Scheduler<Ev>) {
        let now = s.now().as_nanos();
        let cl = self.cluster;
        let loc = self.state.loc[pod.index()];
        let ctl = self.control.as_mut().unwrap();
        let pr = &mut ctl.pods[pod.index()];
        pr.slice_pending = false;
        let node_ready = ctl.nodes[loc.node.index()].ready;
        let listed = loc.ip.0 != 0 && pr.state != PodState::Gone;
        let terminating = matches!(pr.state, PodState::Terminating { .. }) || (!pr.active() && listed);
        let cond = Cond {
            listed,
            ready: listed && pr.ready && !terminating && node_ready,
            serving: listed && pr.ready && node_ready,
            terminating,
        };
        let (cause, cause_ns, eps) = (pr.cause, pr.cond_ns, pr.eps.clone());
        let mut changed = Vec::new();
        for (sp, ep) in eps {
            let t = self.state.table(cl, sp);
            let old = t.cond[ep.index()];
            if old != cond {
                t.cond[ep.index()] = cond;
                t.listed = t.listed + cond.listed as u32 - old.listed as u32;
                changed.push(sp);
                let ctl = self.control.as_mut().unwrap();
                ctl.eps_total = ctl.eps_total + cond.listed as u64 - old.listed as u64;
            }
        }
        if changed.is_empty() {
            return;
        }
        let version = self.state.version + 1;
        self.state.version = version;
        for &sp in &changed {
            let svc = &cl.services[cl.service_ports[sp.index()].service.index()];
            let local = svc.external_traffic_policy == TrafficPolicy::Local
                || svc.internal_traffic_policy == TrafficPolicy::Local;
            self.state.publish(cl, sp, version, local);
        }
        let ctl = self.ctl();
        if let Some(st) = ctl.stats.get_mut(cause as usize) {
            st.versions += 1;
        }
        let at = ctl.log_ports.len() as u32;
        ctl.log_ports.extend_from_slice(&changed);
        ctl.log.push(Published { cause_ns, at_ns: now, change: cause, ports: (at, ctl.log_ports.len() as u32) });
        self.wake_proxies(s);
        if self.state.version.is_multiple_of(4096) {
            let oldest = self.oldest_synced();
            self.state.prune(oldest);
        }
    }

    /// The lowest version a running node's rules reflect.
    pub(in crate::world) fn oldest_synced(&self) -> u64 {
        let ctl = self.control.as_ref().unwrap();
        (0..ctl.nodes.len()).filter(|&n| ctl.nodes[n].alive).map(|n| self.state.synced[n]).min().unwrap_or(0)
    }

    /// A new version was published: every running kube-proxy that is not
    /// already waiting for a sync schedules one, when the update reaches
    /// it (its watch lag) and its minSyncPeriod allows.
    pub(in crate::world) fn wake_proxies(&mut self, s: &mut Scheduler<Ev>) {
        let now = s.now().as_nanos();
        let ctl = self.control.as_mut().unwrap();
        let mut due = Vec::new();
        // Only the nodes idle since their last sync: the others will read
        // this version when their pending sync comes.
        for n in std::mem::take(&mut ctl.idle) {
            let n = n.index();
            let node = &mut ctl.nodes[n];
            node.idle = false;
            if !node.alive || node.scheduled || node.running {
                continue;
            }
            let lag = ctl.params.watch_delay.sample(&mut ctl.watch[n]);
            node.lag_ns = lag;
            node.scheduled = true;
            let at = (now + lag).max(node.last_start + ctl.sync.min_sync_ns);
            due.push((n, at - now, node.gen));
        }
        for (n, delay, gen) in due {
            self.at(s, delay, Ev::SyncStart { node: NodeId::new(n as u32), gen });
        }
    }

    /// Node `node`'s kube-proxy starts a sync: it reads what reached it
    /// (versions published at least its watch lag ago) and writes rules
    /// for a time that depends on the mode and on what changed. A
    /// `periodic` sync (syncPeriod) runs even with nothing new.
    pub(in crate::world) fn sync_start(&mut self, node: NodeId, gen: u32, periodic: bool, s: &mut Scheduler<Ev>) {
        let now = s.now().as_nanos();
        let synced = self.state.synced[node.index()];
        let ctl = self.control.as_mut().unwrap();
        let nc = &mut ctl.nodes[node.index()];
        if gen != nc.gen || !nc.alive {
            return;
        }
        nc.scheduled = false;
        if nc.running {
            return;
        }
        // Versions are published in time order: the ones that reached the node.
        let seen = now.saturating_sub(nc.lag_ns);
        let frontier = ctl.log.partition_point(|p| p.at_ns <= seen) as u64;
        let full = now >= nc.next_full;
        if frontier <= synced && !periodic {
            return self.reschedule(node, s);
        }
        // The distinct ports changed since the last sync, and the endpoints
        // their chains hold now (a partial sync rewrites each once).
        let (mut ports, mut eps) = (0u64, 0u64);
        let serial = ctl.syncs;
        for p in &ctl.log[synced as usize..frontier.max(synced) as usize] {
            for &sp in &ctl.log_ports[p.ports.0 as usize..p.ports.1 as usize] {
                if ctl.counted[sp.index()] != serial {
                    ctl.counted[sp.index()] = serial;
                    ports += 1;
                    eps += self.state.listed(self.cluster, sp) as u64;
                }
            }
        }
        let work = sync::Work {
            full,
            ports: ctl.ports_total,
            endpoints: ctl.eps_total,
            changed_ports: ports.min(ctl.ports_total),
            changed_endpoints: eps,
        };
        let d = sync::duration_ns(ctl.mode, &ctl.sync, &work);
        nc.running = true;
        nc.reading = frontier.max(synced);
        nc.last_start = now;
        if full {
            nc.next_full = now + ctl.sync.full_sync_period_ns;
            ctl.full_syncs += 1;
        }
        ctl.syncs += 1;
        ctl.sync_ns.add(d);
        ctl.sync_max_ns = ctl.sync_max_ns.max(d);
        if frontier > synced {
            self.at(s, d, Ev::SyncEnd { node, gen, quiet: false });
        } else {
            // A periodic sync with nothing new: like its `Resync`, it does
            // not keep the run going.
            s.schedule(emu_engine::SimDuration(d), Ev::SyncEnd { node, gen, quiet: true });
        }
    }

    /// Node `node`'s rules are in the kernel: its data path now uses the
    /// version the sync read. Every update it carries is measured.
    pub(in crate::world) fn sync_end(&mut self, node: NodeId, gen: u32, s: &mut Scheduler<Ev>) {
        let now = s.now().as_nanos();
        let ctl = self.control.as_mut().unwrap();
        let nc = &mut ctl.nodes[node.index()];
        if gen != nc.gen {
            return;
        }
        nc.running = false;
        let old = self.state.synced[node.index()];
        let new = nc.reading;
        for p in &ctl.log[old as usize..new as usize] {
            if let Some(l) = ctl.latency.get_mut(p.change as usize) {
                l.record(now - p.cause_ns);
            }
        }
        self.state.synced[node.index()] = new;
        self.conntrack_cleanup(node);
        self.lb_answers(node, now);
        self.reschedule(node, s);
    }

    /// After a sync (or a wake-up with nothing to read yet), the next one
    /// if versions are still unread.
    pub(in crate::world) fn reschedule(&mut self, node: NodeId, s: &mut Scheduler<Ev>) {
        let now = s.now().as_nanos();
        let synced = self.state.synced[node.index()];
        let ctl = self.control.as_mut().unwrap();
        let nc = &mut ctl.nodes[node.index()];
        if nc.scheduled || nc.running {
            return;
        }
        if ctl.log.len() as u64 <= synced {
            // Nothing unread: idle until the next version wakes it.
            if !nc.idle {
                nc.idle = true;
                ctl.idle.push(node);
            }
            return;
        }
        let next = &ctl.log[synced as usize];
        let lag = ctl.params.watch_delay.sample(&mut ctl.watch[node.index()]);
        nc.lag_ns = lag;
        nc.scheduled = true;
        let at = (next.at_ns + lag).max(nc.last_start + ctl.sync.min_sync_ns).max(now);
        let gen = nc.gen;
        self.at(s, at - now, Ev::SyncStart { node, gen });
    }

    /// The periodic full resync of `node` (syncPeriod), if it is idle.
    pub(in crate::world) fn resync(&mut self, node: NodeId, s: &mut Scheduler<Ev>) {
        let ctl = self.control.as_mut().unwrap();
        let period = ctl.sync.sync_period_ns;
        let nc = &mut ctl.nodes[node.index()];
        // Not counted in `live`.
        s.schedule(emu_engine::SimDuration(period), Ev::Resync { node });
        if !nc.alive || nc.scheduled || nc.running {
            return;
        }
        let gen = nc.gen;
        self.sync_start(node, gen, true, s);
    }

    /// kube-proxy's conntrack cleanup after a sync on `node`: the UDP
    /// entries of the node's pods whose DNAT names a kube-dns endpoint that
    /// no longer serves in the node's new rules are deleted (the next query
    /// is DNATed afresh). Without it a long-lived socket keeps sending to a
    /// gone CoreDNS pod while it keeps querying: the DNS black hole.
    fn conntrack_cleanup(&mut self, node: NodeId) {
        let cl = self.cluster;
        let on = self.control.as_deref().is_some_and(|c| c.sync.conntrack_cleanup);
        let (Some(svc), true, false) = (cl.dns_service, on, self.dns_sockets.is_empty()) else { return };
        let Some(sp) = cl.service_port(svc, 53, crate::cluster::Protocol::Udp) else { return };
        let view = self.state.view(cl, sp, node);
        let serving = view.cluster();
        let loc = &self.state.loc;
        // (Deletion only: the order of the walk cannot reach the output.)
        self.dns_sockets.retain(|pod, &mut (ep, _)| {
            loc[pod.index()].node != node || (0..serving.len()).any(|i| serving.get(i) == ep)
        });
    }
}
