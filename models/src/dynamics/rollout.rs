//! The Deployment controller's rolling-update arithmetic
//! (pkg/controller/deployment/rolling.go), as pure functions.

use super::params::Lifecycle;

/// maxSurge and maxUnavailable of `lc` for `replicas` desired pods: surge
/// rounds up, unavailable down, and when both come to 0 unavailable is 1
/// (`ResolveFenceposts` in pkg/controller/deployment/util).
pub fn fenceposts(lc: &Lifecycle, replicas: u32) -> (u32, u32) {
    let surge = lc.max_surge.scaled(replicas, true);
    let unavailable = lc.max_unavailable.scaled(replicas, false);
    if surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable)
    }
}

/// The pods of one Deployment, as the controller counts them: pods being
/// deleted are not counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Desired replicas.
    pub desired: u32,
    /// Pods of the new template.
    pub new: u32,
    /// Of those, available (Ready for minReadySeconds).
    pub new_available: u32,
    /// Pods of older templates.
    pub old: u32,
    /// Of those, available.
    pub old_available: u32,
}

/// One reconcile of a rolling update: (new pods to create, old pods to
/// delete). Scale up the new ReplicaSet to at most `desired + maxSurge`
/// pods in all; scale old ones down while `desired - maxUnavailable` pods
/// stay available, unavailable old pods first (`cleanupUnhealthyReplicas`,
/// then `scaleDownOldReplicaSetsForRollingUpdate`).
pub fn step(c: Counts, surge: u32, unavailable: u32) -> (u32, u32) {
    let total = c.new + c.old;
    let create = if c.new < c.desired { (c.desired + surge).saturating_sub(total).min(c.desired - c.new) } else { 0 };
    let min_available = c.desired.saturating_sub(unavailable);
    let new_unavailable = c.new - c.new_available;
    // Old pods that may go: first the unavailable ones, as far as the
    // total stays above what must be available plus the new pods not yet
    // available.
    let room = (total + create).saturating_sub(min_available + new_unavailable + create);
    let unhealthy = (c.old - c.old_available).min(room);
    let available = c.old_available + c.new_available;
    let healthy = available.saturating_sub(min_available).min(c.old_available);
    (create, unhealthy + healthy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamics::params::IntOrPercent;

    #[test]
    fn fenceposts_round_surge_up_and_unavailable_down() {
        let lc = Lifecycle::default();
        assert_eq!(fenceposts(&lc, 10), (3, 2));
        assert_eq!(fenceposts(&lc, 4), (1, 1));
        assert_eq!(fenceposts(&lc, 1), (1, 0));
        let zero = Lifecycle { max_surge: IntOrPercent::Int(0), max_unavailable: IntOrPercent::Percent(10), ..lc };
        assert_eq!(fenceposts(&zero, 5), (0, 1), "both 0: one pod may be unavailable");
    }

    #[test]
    fn a_rollout_of_ten_surges_three_and_keeps_eight_available() {
        // Start: 10 old pods, all available.
        let c = Counts { desired: 10, new: 0, new_available: 0, old: 10, old_available: 10 };
        assert_eq!(step(c, 3, 2), (3, 2), "13 pods at most, 8 available at least");
        // 3 new pods starting, 8 old: nothing more until new ones are ready.
        let c = Counts { desired: 10, new: 3, new_available: 0, old: 8, old_available: 8 };
        assert_eq!(step(c, 3, 2), (2, 0));
        // 5 new (3 ready), 8 old: 11 available, 3 old may go.
        let c = Counts { desired: 10, new: 5, new_available: 3, old: 8, old_available: 8 };
        assert_eq!(step(c, 3, 2), (0, 3));
        // Done: nothing to do.
        let c = Counts { desired: 10, new: 10, new_available: 10, old: 0, old_available: 0 };
        assert_eq!(step(c, 3, 2), (0, 0));
    }

    #[test]
    fn a_single_replica_surges_before_it_deletes() {
        let c = Counts { desired: 1, new: 0, new_available: 0, old: 1, old_available: 1 };
        assert_eq!(step(c, 1, 0), (1, 0));
        let c = Counts { desired: 1, new: 1, new_available: 0, old: 1, old_available: 1 };
        assert_eq!(step(c, 1, 0), (0, 0), "the old pod stays until the new one is available");
        let c = Counts { desired: 1, new: 1, new_available: 1, old: 1, old_available: 1 };
        assert_eq!(step(c, 1, 0), (0, 1));
    }

    #[test]
    fn unavailable_old_pods_go_first() {
        let c = Counts { desired: 4, new: 1, new_available: 0, old: 4, old_available: 2 };
        let (create, delete) = step(c, 1, 1);
        assert_eq!(create, 0);
        // 5 pods, 3 must stay available and the new one is not: one may go,
        // and it is an unavailable old one.
        assert_eq!(delete, 1);
    }
}
