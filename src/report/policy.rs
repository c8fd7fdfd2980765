//! `policies.csv`: what each NetworkPolicy selected and decided.

use emu_models::cluster::Cluster;
use emu_models::world::Results;

use super::Table;

/// The columns of `policies.csv`.
pub(super) const POLICIES: [&str; 8] = [
    "namespace",
    "policy",
    "types",
    "pods_selected",
    "ingress_allowed",
    "ingress_denied",
    "egress_allowed",
    "egress_denied",
];

/// One run's rows: per policy (by namespace, then name), the pods it
/// selected at time 0, the first packets one of its rules admitted first,
/// and the first packets dropped while it isolated their pod.
pub(super) fn policies(t: &mut Table, pre: &[(String, String)], cl: &Cluster, res: &Results) -> Result<(), String> {
    for (p, counts) in cl.policies.list.iter().zip(&res.policy_counts) {
        let types = match p.types {
            [true, true] => "ingress+egress",
            [true, false] => "ingress",
            [false, true] => "egress",
            [false, false] => "",
        };
        let pods: usize = p.workloads.iter().map(|&w| cl.workloads[w as usize].pods.len()).sum();
        let mut row = vec![cl.namespaces[p.namespace as usize].clone(), p.name.clone(), types.into(), pods.to_string()];
        row.extend(counts.iter().map(u64::to_string));
        t.row(pre, &row)?;
    }
    Ok(())
}
