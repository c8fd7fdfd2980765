//! A cluster that changes while traffic flows: the timeline of changes, the
//! pods' lifecycle parameters, the Deployment controller's arithmetic,
//! host-local IPAM, and what a kube-proxy sync costs per mode. The world
//! (`crate::world`) runs them as events; this module holds the pieces that
//! do not need the world.

pub mod ipam;
pub mod params;
pub mod rollout;
pub mod sync;

pub use params::{ControlParams, IntOrPercent, Lifecycle, Probe, SyncParams};

use crate::cluster::Origin;
use crate::ids::{NodeId, PodId, SvcId};

/// One change of the timeline, at a simulated time.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// Where it was declared (`changes[3]`).
    pub origin: Origin,
    /// When it happens [ns].
    pub at_ns: u64,
    /// What happens.
    pub kind: ChangeKind,
}

/// What a change does.
#[derive(Clone, Debug, PartialEq)]
pub enum ChangeKind {
    /// A new pod template for the workload (index into
    /// `Cluster::workloads`): every pod replaced by a rolling update
    /// (maxSurge, maxUnavailable, minReadySeconds).
    Rollout(u32),
    /// Workload `workload` scaled to `replicas`.
    Scale {
        /// The workload (index into `Cluster::workloads`).
        workload: u32,
        /// Desired replicas.
        replicas: u32,
    },
    /// A pod deleted (graceful); its workload creates a replacement.
    DeletePod(PodId),
    /// A node cordoned and every pod on it evicted (graceful).
    DrainNode(NodeId),
    /// A node lost: its pods unreachable at once, no goodbye.
    FailNode(NodeId),
    /// A lost node back: it reports Ready again.
    RecoverNode(NodeId),
    /// Services created (declared up front, absent until now).
    CreateServices(Vec<SvcId>),
}

impl ChangeKind {
    /// The scenario key of the change (`rollout`, `scale`, ...).
    pub fn key(&self) -> &'static str {
        match self {
            ChangeKind::Rollout(_) => "rollout",
            ChangeKind::Scale { .. } => "scale",
            ChangeKind::DeletePod(_) => "delete_pod",
            ChangeKind::DrainNode(_) => "drain_node",
            ChangeKind::FailNode(_) => "fail_node",
            ChangeKind::RecoverNode(_) => "recover_node",
            ChangeKind::CreateServices(_) => "create_services",
        }
    }
}
