//! The timeline of `[[changes]]`: times resolved (`at`, or `after` the
//! previous change), targets resolved against the built cluster, and the
//! Services that `create_services` declares.

use emu_models::cluster::{Cluster, Origin, ServicePortSpec, ServiceSpec, ServiceType, TargetPort, TrafficPolicy};
use emu_models::dynamics::{Change, ChangeKind};
use emu_models::ids::SvcId;

use super::dynamics_schema::ChangeToml;
use super::expand::substitute_str;
use super::Ctx;

/// Most changes in a timeline, and most Services one change may create.
pub const MAX_CHANGES: usize = 100_000;

/// One `[[changes]]` entry after `count` expansion: (index of the entry as
/// written, repetition, the entry with `{i}` substituted).
pub(super) type Expanded = (usize, u32, ChangeToml);

/// `[[changes]]` with every `count` expanded.
pub(super) fn expand_changes(ctx: &Ctx, changes: &[ChangeToml]) -> Result<Vec<Expanded>, String> {
    let list = super::expand::expand(ctx, "changes", changes, MAX_CHANGES as u32, |c| c.count.take())?;
    let mut out = Vec::with_capacity(list.len());
    for (k, c) in list {
        let rep = match out.last() {
            Some(&(prev, r, _)) if prev == k => r + 1,
            _ => 0,
        };
        if c.every.is_some() && changes[k].count.is_none() {
            return Err(ctx.err(&format!("changes[{k}].every"), "`every` spaces the repetitions of `count`: set count"));
        }
        out.push((k, rep, c));
    }
    Ok(out)
}

/// The Services `create_services` entries declare, appended to the
/// cluster's (they get their ClusterIPs at build time and exist from
/// their change on). `namespaces`: every namespace the cluster will have.
pub(super) fn created_services(
    ctx: &Ctx,
    changes: &[Expanded],
    namespaces: &[&str],
) -> Result<Vec<ServiceSpec>, String> {
    let mut out = Vec::new();
    for (i, _, c) in changes {
        let i = *i;
        let Some(cs) = &c.create_services else { continue };
        let ns = c.namespace.as_deref().unwrap_or("default");
        if !namespaces.contains(&ns) {
            return Err(ctx.err(&format!("changes[{i}].namespace"), format!("no namespace `{ns}`")));
        }
        let key = format!("changes[{i}].create_services");
        if cs.count == 0 || cs.count > super::limits::MAX_SERVICES {
            return Err(ctx.err(&format!("{key}.count"), format!("must be from 1 to {}", super::limits::MAX_SERVICES)));
        }
        if cs.count > 1 && !cs.name.contains("{i") {
            return Err(ctx.err(&format!("{key}.name"), "a name for count > 1 needs {i} to make names unique"));
        }
        let port = u16::try_from(cs.port)
            .ok()
            .filter(|&p| p > 0)
            .ok_or_else(|| ctx.err(&format!("{key}.port"), format!("port {} is out of range 1-65535", cs.port)))?;
        if let Some(t) = cs.target_port.filter(|&t| t == 0 || t > 65_535) {
            return Err(ctx.err(&format!("{key}.target_port"), format!("port {t} is out of range 1-65535")));
        }
        for k in 0..cs.count {
            out.push(ServiceSpec {
                origin: ctx.origin(key.clone()),
                name: substitute_str(&cs.name, k),
                namespace: c.namespace.clone().unwrap_or_else(|| "default".into()),
                kind: ServiceType::ClusterIp,
                selector: Some(cs.selector.clone()),
                cluster_ip: None,
                headless: false,
                affinity_timeout_s: None,
                internal_traffic_policy: TrafficPolicy::Cluster,
                ports: vec![ServicePortSpec {
                    name: None,
                    port: port as u32,
                    target_port: cs.target_port.map(TargetPort::Number),
                    node_port: None,
                    protocol: emu_models::cluster::Protocol::Tcp,
                }],
                external_traffic_policy: TrafficPolicy::Cluster,
                manual_endpoints: Vec::new(),
                external_name: None,
            });
        }
    }
    Ok(out)
}

/// The timeline, resolved against `cluster`.
pub(super) fn resolve(ctx: &Ctx, changes: &[Expanded], cluster: &Cluster) -> Result<Vec<Change>, String> {
    if changes.len() > MAX_CHANGES {
        return Err(ctx.err("changes", format!("{} changes is more than {MAX_CHANGES}", changes.len())));
    }
    let mut out = Vec::with_capacity(changes.len());
    let mut prev = 0u64;
    let mut first_at = 0u64;
    for (i, rep, c) in changes {
        let (i, rep) = (*i, *rep);
        let key = format!("changes[{i}]");
        let every = c.every.map_or(0, |d| d.ns());
        let at = match (c.at, c.after) {
            _ if rep > 0 => first_at.saturating_add(every.saturating_mul(rep as u64)),
            (Some(at), None) => at.ns(),
            (None, Some(after)) => prev.saturating_add(after.ns()),
            (None, None) => {
                return Err(ctx.err(&key, "needs `at` (a time) or `after` (a time after the previous change)"))
            }
            (Some(_), Some(_)) => return Err(ctx.err(&format!("{key}.after"), "set `at` or `after`, not both")),
        };
        if at < prev {
            return Err(ctx.err(
                &format!("{key}.at"),
                format!(
                    "{} is before the previous change ({}): changes are listed in time order",
                    emu_engine::format_duration(at),
                    emu_engine::format_duration(prev)
                ),
            ));
        }
        if rep == 0 {
            first_at = at;
        }
        if at > emu_engine::MAX_DURATION_NS {
            return Err(ctx.err(&format!("{key}.at"), "is beyond emu's longest time, 1000000s"));
        }
        prev = at;
        let ns_name = c.namespace.as_deref().unwrap_or("default");
        let ns = || {
            cluster
                .namespace(ns_name)
                .ok_or_else(|| ctx.err(&format!("{key}.namespace"), format!("no namespace `{ns_name}`")))
        };
        let workload = |k: &str, name: &str| -> Result<u32, String> {
            let nsi = ns()?;
            let name = name.strip_prefix("deployment/").unwrap_or(name);
            cluster.workload_by_name(nsi, name).ok_or_else(|| {
                ctx.err(
                    &format!("{key}.{k}"),
                    format!("no Deployment or [[pods]] template `{name}` in namespace `{ns_name}`"),
                )
            })
        };
        let node = |k: &str, name: &str| {
            let name = name.strip_prefix("node/").unwrap_or(name);
            cluster.node_by_name(name).ok_or_else(|| {
                ctx.err(
                    &format!("{key}.{k}"),
                    format!("no node `{name}` (nodes are node-0 .. node-{})", cluster.nodes.len() - 1),
                )
            })
        };
        let mut kinds = Vec::new();
        if let Some(r) = &c.rollout {
            kinds.push(ChangeKind::Rollout(workload("rollout", r)?));
        }
        if let Some(s) = &c.scale {
            let w = workload("scale.deployment", &s.deployment)?;
            let replicas = u32::try_from(s.replicas)
                .ok()
                .filter(|&r| r as u64 <= emu_models::cluster::MAX_PODS)
                .ok_or_else(|| {
                    ctx.err(
                        &format!("{key}.scale.replicas"),
                        format!("{} is not a replica count from 0 to {}", s.replicas, emu_models::cluster::MAX_PODS),
                    )
                })?;
            kinds.push(ChangeKind::Scale { workload: w, replicas });
        }
        if let Some(p) = &c.delete_pod {
            let nsi = ns()?;
            let name = p.strip_prefix("pod/").unwrap_or(p);
            let pod = cluster.pod_by_name(nsi, name).ok_or_else(|| {
                ctx.err(&format!("{key}.delete_pod"), format!("no pod `{name}` in namespace `{ns_name}` at time 0"))
            })?;
            kinds.push(ChangeKind::DeletePod(pod));
        }
        if let Some(n) = &c.drain_node {
            kinds.push(ChangeKind::DrainNode(node("drain_node", n)?));
        }
        if let Some(n) = &c.fail_node {
            kinds.push(ChangeKind::FailNode(node("fail_node", n)?));
        }
        if let Some(n) = &c.recover_node {
            kinds.push(ChangeKind::RecoverNode(node("recover_node", n)?));
        }
        if let Some(cs) = &c.create_services {
            let nsi = ns()?;
            let svcs: Vec<SvcId> = (0..cs.count)
                .map(|k| cluster.service_by_name(nsi, &substitute_str(&cs.name, k)).expect("declared before the build"))
                .collect();
            kinds.push(ChangeKind::CreateServices(svcs));
        }
        let kind = match kinds.len() {
            1 => kinds.pop().unwrap(),
            0 => return Err(ctx.err(
                &key,
                "needs one action: rollout, scale, delete_pod, drain_node, fail_node, recover_node or create_services",
            )),
            n => {
                let keys: Vec<&str> = kinds.iter().map(|k| k.key()).collect();
                return Err(ctx.err(
                    &key,
                    format!("has {n} actions ({}): write one [[changes]] entry per action", keys.join(", ")),
                ));
            }
        };
        out.push(Change {
            origin: Origin { file: ctx.file.to_string(), line: ctx.origin(key.clone()).line, path: key },
            at_ns: at,
            kind,
        });
    }
    Ok(out)
}
