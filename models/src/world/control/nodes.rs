//! Nodes: failure (no goodbye), NotReady after node-monitor-grace-period,
//! eviction after the toleration, recovery.

use emu_engine::Scheduler;

use super::*;

impl World<'_> {
    /// Node `node` is lost: its pods stop answering at once, its
    /// kube-proxy stops; the node controller marks it NotReady after
    /// node-monitor-grace-period and evicts its pods after the toleration.
    pub(in crate::world) fn fail_node(&mut self, node: NodeId, s: &mut Scheduler<Ev>) {
        let ctl = self.ctl();
        let nc = &mut ctl.nodes[node.index()];
        if !nc.alive {
            return;
        }
        nc.alive = false;
        nc.gen += 1;
        nc.scheduled = false;
        nc.running = false;
        let grace = ctl.params.node_monitor_grace_ns;
        let gen = self.ctl().nodes[node.index()].gen;
        for pod in self.pods_on(node) {
            self.step(pod, "unreachable", s);
        }
        self.lb_answers(node, s.now().as_nanos());
        self.at(s, grace, Ev::NodeNotReady { node, gen });
    }

    /// The node controller marks `node` NotReady: its pods' endpoints turn
    /// not ready, and their eviction is due after the toleration.
    pub(in crate::world) fn node_not_ready(&mut self, node: NodeId, gen: u32, s: &mut Scheduler<Ev>) {
        let now = s.now().as_nanos();
        let ctl = self.ctl();
        let nc = &mut ctl.nodes[node.index()];
        if nc.gen != gen || nc.alive {
            return;
        }
        nc.ready = false;
        let eviction = ctl.params.eviction_ns;
        for pod in self.pods_on(node) {
            self.slice_update(pod, now, s);
        }
        self.at(s, eviction, Ev::Evict { node, gen });
    }

    /// The pods of a node NotReady for the toleration are deleted; their
    /// workloads replace them elsewhere. On a lost node nothing runs the
    /// deletion: the pods stay terminating, unreachable.
    pub(in crate::world) fn evict(&mut self, node: NodeId, gen: u32, s: &mut Scheduler<Ev>) {
        if self.ctl().nodes[node.index()].gen != gen || self.ctl().nodes[node.index()].alive {
            return;
        }
        for pod in self.pods_on(node) {
            let cause = self.ctl().pods[pod.index()].cause;
            self.delete_pod(pod, cause, s);
            let w = self.ctl().pods[pod.index()].workload;
            self.reconcile(w, s);
        }
    }

    /// Node `node` is back: it reports Ready, its kube-proxy syncs in full.
    pub(in crate::world) fn recover_node(&mut self, node: NodeId, s: &mut Scheduler<Ev>) {
        let now = s.now().as_nanos();
        let ctl = self.ctl();
        let nc = &mut ctl.nodes[node.index()];
        if nc.alive {
            return;
        }
        nc.alive = true;
        nc.ready = true;
        nc.gen += 1;
        nc.next_full = now;
        for pod in self.pods_on(node) {
            self.slice_update(pod, now, s);
        }
        let gen = self.ctl().nodes[node.index()].gen;
        self.ctl().nodes[node.index()].scheduled = true;
        self.at(s, 0, Ev::SyncStart { node, gen });
    }
}
