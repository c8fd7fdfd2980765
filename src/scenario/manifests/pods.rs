//! Pods and Deployments' pod templates: containers and their ports, and
//! the lifecycle a changing cluster uses (grace period, readiness probe,
//! preStop, strategy, minReadySeconds).

use emu_models::cluster::{ContainerSpec, Labels, Origin, PodSpec, PortSpec, Protocol};
use emu_models::dynamics::{IntOrPercent, Lifecycle, Probe};
use emu_models::policy::LabelSelector;
use serde_saphyr::Spanned;

use super::yaml::{IntOrText, Selector, Spec};
use super::{line_of, Doc, Loaded};

/// A Pod.
pub(super) fn pod(d: Doc, out: &mut Loaded) -> Result<(), String> {
    let Doc { obj, origin, name, namespace, .. } = d;
    let spec = obj.spec.ok_or_else(|| format!("{origin}: spec is required"))?;
    if let Some(h) = spec.value.hostname.as_deref().filter(|h| *h != name) {
        return Err(format!("{origin}: spec.hostname `{h}`: a hostname other than the pod's name is not modelled"));
    }
    let subdomain = spec.value.subdomain.clone();
    let lifecycle = lifecycle(&origin, "spec", &spec.value, None, &mut out.warnings)?;
    let pod = from_spec(&origin, origin.clone(), name, namespace, &spec.value, obj.metadata.labels, &mut out.warnings)?;
    out.pods.push(PodSpec { subdomain, lifecycle, ..pod });
    Ok(())
}

/// The controllers whose pod template emu reads.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Controller {
    /// Deployment: `replicas` pods, rolled by its `strategy`.
    Deployment,
    /// ReplicaSet: `replicas` pods (a rollout replaces them all at once
    /// in emu, as a Deployment with its default strategy would).
    ReplicaSet,
    /// StatefulSet: pods `name-0` .. `name-(replicas-1)`, rolled one at a
    /// time (maxSurge 0, maxUnavailable 1).
    StatefulSet,
    /// DaemonSet: one pod on every node, rolled one node at a time.
    DaemonSet,
}

/// A Deployment, ReplicaSet, StatefulSet or DaemonSet: its pod template,
/// replicas (or one pod per node) and how it rolls.
pub(super) fn workload(d: Doc, out: &mut Loaded, c: Controller) -> Result<(), String> {
    let Doc { obj, origin, name, namespace, .. } = d;
    let spec = obj.spec.ok_or_else(|| format!("{origin}: spec is required"))?;
    let o = Origin { line: line_of(&spec), ..origin.clone() };
    let mut s = spec.value;
    let t = s.template.take().ok_or_else(|| format!("{o}: spec.template is required"))?;
    let sel = match s.selector.take() {
        Some(Selector::Full(sel)) => sel.read(&o.file, &o.path, "spec.selector")?,
        _ => LabelSelector::default(),
    };
    if sel.is_empty() {
        return Err(format!("{o}: spec.selector needs matchLabels or matchExpressions"));
    }
    if !sel.matches(&t.metadata.labels) {
        return Err(format!("{o}: spec.selector does not match spec.template.metadata.labels"));
    }
    let mut lifecycle = lifecycle(&o, "spec.template.spec", &t.spec, Some(&s), &mut out.warnings)?;
    if matches!(c, Controller::StatefulSet | Controller::DaemonSet) {
        // Their RollingUpdate default: one pod at a time, no surge.
        (lifecycle.max_surge, lifecycle.max_unavailable) = (IntOrPercent::Int(0), IntOrPercent::Int(1));
    }
    if c == Controller::DaemonSet && t.spec.node_selector.as_ref().is_some_and(|m| !m.is_empty()) {
        out.warnings.push(format!(
            "{o}: spec.template.spec.nodeSelector: emu's nodes carry no labels, so the DaemonSet runs a pod on every node"
        ));
    }
    if c == Controller::StatefulSet && s.service_name.is_none() {
        out.warnings.push(format!("{o}: spec.serviceName: a StatefulSet without its governing headless Service"));
    }
    let pod = from_spec(&o, origin, name, namespace, &t.spec, t.metadata.labels, &mut out.warnings)?;
    out.pods.push(PodSpec {
        lifecycle,
        replicas: if c == Controller::DaemonSet { 0 } else { s.replicas.unwrap_or(1) },
        per_node: c == Controller::DaemonSet,
        subdomain: if c == Controller::StatefulSet { s.service_name.clone() } else { None },
        ..pod
    });
    Ok(())
}

/// A Job, or a CronJob's job template: its pods, `parallelism` of them
/// (default 1). They are there from time 0 for the whole run (emu does not
/// model completions or a CronJob's schedule): clients for flows, or
/// servers.
pub(super) fn job(d: Doc, out: &mut Loaded, cron: bool) -> Result<(), String> {
    let Doc { obj, origin, name, namespace, .. } = d;
    let spec = obj.spec.ok_or_else(|| format!("{origin}: spec is required"))?;
    let o = Origin { line: line_of(&spec), ..origin.clone() };
    let mut s = spec.value;
    let (mut job, prefix) = if cron {
        let j = s.job_template.take().ok_or_else(|| format!("{o}: spec.jobTemplate is required"))?;
        out.warnings.push(format!(
            "{o}: CronJob: its schedule{} is not modelled; one job's pods run for the whole run",
            s.schedule.as_deref().map(|x| format!(" `{x}`")).unwrap_or_default()
        ));
        (j.spec, "spec.jobTemplate.spec")
    } else {
        (s, "spec")
    };
    let t = job.template.take().ok_or_else(|| format!("{o}: {prefix}.template is required"))?;
    let replicas = match &job.parallelism {
        None => 1,
        Some(p) => u32::try_from(p.value)
            .map_err(|_| format!("{}: {prefix}.parallelism: {} is not 0 or more", at(&o, p), p.value))?,
    };
    let lifecycle = lifecycle(&o, &format!("{prefix}.template.spec"), &t.spec, None, &mut out.warnings)?;
    let pod = from_spec(&o, origin, name, namespace, &t.spec, t.metadata.labels, &mut out.warnings)?;
    out.pods.push(PodSpec { replicas, lifecycle, ..pod });
    Ok(())
}

/// The pod of pod spec `spec` (a Pod's, or a controller's template, read
/// at `o`): one replica, before its controller's settings.
fn from_spec(
    o: &Origin,
    origin: Origin,
    name: String,
    namespace: String,
    spec: &Spec,
    labels: Labels,
    warnings: &mut Vec<String>,
) -> Result<PodSpec, String> {
    let host_network = spec.host_network == Some(true);
    let cluster_dns = emu_models::cluster::cluster_dns(host_network, spec.dns_policy.as_deref())
        .map_err(|e| format!("{o}: spec.dnsPolicy: {e}"))?;
    Ok(PodSpec {
        lifecycle: Lifecycle::default(),
        containers: containers(o, spec, host_network, warnings)?,
        origin,
        name,
        namespace,
        replicas: 1,
        per_node: false,
        host_network,
        cluster_dns,
        subdomain: None,
        node: spec.node_name.clone(),
        ip: None,
        weight: 1,
        labels,
    })
}

pub(super) fn protocol(o: &Origin, p: &Option<String>) -> Result<Protocol, String> {
    match p.as_deref() {
        None | Some("TCP") => Ok(Protocol::Tcp),
        Some("UDP") => Ok(Protocol::Udp),
        Some("SCTP") => Ok(Protocol::Sctp),
        Some(other) => Err(format!("{o}: protocol `{other}` is not modelled (TCP, UDP or SCTP)")),
    }
}

/// The containers of `spec` (a hostNetwork pod's if `host_network`), with
/// the ports they own.
///
/// `hostPort`: on a hostNetwork pod it must equal the container port (the
/// API server's rule) and says nothing more. On another pod the CNI's
/// `portmap` plugin would DNAT the node's address and that port to the
/// pod; emu does not model that DNAT: a warning, and the port is reached
/// at the pod's own address.
fn containers(
    o: &Origin,
    spec: &Spec,
    host_network: bool,
    warnings: &mut Vec<String>,
) -> Result<Vec<ContainerSpec>, String> {
    if spec.dns_config.is_some() {
        return Err(format!("{o}: spec.dnsConfig is not modelled yet (pods use ClusterFirst with ndots from [dns])"));
    }
    // Native sidecars (init containers that keep running) own ports like
    // containers; other init containers are done before the pod starts.
    let sidecars = spec.init_containers.iter().filter(|c| c.restart_policy.as_deref() == Some("Always"));
    spec.containers
        .iter()
        .chain(sidecars)
        .map(|c| {
            let ports = c
                .ports
                .iter()
                .map(|p| {
                    match p.host_port {
                        Some(h) if host_network && h != p.container_port => {
                            return Err(format!(
                                "{o}: container `{}`: hostPort {h} must equal containerPort {} in a hostNetwork pod",
                                c.name, p.container_port
                            ))
                        }
                        Some(h) if !host_network => warnings.push(format!(
                            "{o}: container `{}`: hostPort {h}: the CNI portmap DNAT from the node's address is \
                             not modelled; port {} is reached at the pod's own address",
                            c.name, p.container_port
                        )),
                        _ => {}
                    }
                    if p.host_ip.is_some() && p.host_port.is_none() {
                        return Err(format!("{o}: container `{}`: hostIP without hostPort", c.name));
                    }
                    Ok(PortSpec { name: p.name.clone(), port: p.container_port, protocol: protocol(o, &p.protocol)? })
                })
                .collect::<Result<Vec<_>, String>>()?;
            Ok(ContainerSpec { name: c.name.clone(), ports })
        })
        .collect()
}

/// Most seconds a manifest's time field may hold: emu's longest duration.
const MAX_SECONDS: i64 = (emu_engine::MAX_DURATION_NS / 1_000_000_000) as i64;

/// `o` at the line of `v`.
fn at<T>(o: &Origin, v: &Spanned<T>) -> Origin {
    Origin { line: v.referenced.line() as u32, ..o.clone() }
}

/// A field of whole seconds, 0 or more, in nanoseconds.
fn seconds(o: &Origin, field: &str, v: &Spanned<i64>) -> Result<u64, String> {
    if !(0..=MAX_SECONDS).contains(&v.value) {
        return Err(format!("{}: {field}: {} is not a number of seconds from 0 to {MAX_SECONDS}", at(o, v), v.value));
    }
    Ok(v.value as u64 * 1_000_000_000)
}

/// A probe's count or period: 0 means Kubernetes' default (the API
/// server's defaulting), negative is an error.
fn count(o: &Origin, field: &str, v: &Option<Spanned<i64>>, default: u32) -> Result<u32, String> {
    match v {
        None => Ok(default),
        Some(v) if v.value == 0 => Ok(default),
        Some(v) => u32::try_from(v.value).map_err(|_| format!("{}: {field}: {} must be 1 or more", at(o, v), v.value)),
    }
}

/// `maxSurge` or `maxUnavailable`: a count, or a percentage `N%` of at
/// most 100%.
fn int_or_percent(o: &Origin, field: &str, v: &Spanned<IntOrText>) -> Result<IntOrPercent, String> {
    let bad = |what: &str| {
        format!("{}: {field}: `{what}` is not a count (0 or more) or a percentage from 0% to 100%", at(o, v))
    };
    match &v.value {
        IntOrText::Int(n) => u32::try_from(*n).map(IntOrPercent::Int).map_err(|_| bad(&n.to_string())),
        IntOrText::Text(t) => t
            .strip_suffix('%')
            .and_then(|n| n.parse::<u32>().ok())
            .filter(|&p| p <= 100)
            .map(IntOrPercent::Percent)
            .ok_or_else(|| bad(t)),
    }
}

/// The seconds of a sleep command (`sleep 5`, `sleep 1.5`, `sleep 5s`),
/// rounded to the nanosecond; `None` if `args` is not one.
fn sleep_command(args: &[String]) -> Option<u64> {
    let words: Vec<&str> = match args {
        [sleep, n] if sleep == "sleep" || sleep == "/bin/sleep" => vec![sleep, n],
        [sh, c, script] if matches!(sh.as_str(), "sh" | "/bin/sh" | "bash" | "/bin/bash") && c == "-c" => {
            script.split_whitespace().collect()
        }
        _ => return None,
    };
    let [sleep, n] = words[..] else { return None };
    if sleep != "sleep" && sleep != "/bin/sleep" {
        return None;
    }
    let n = n.strip_suffix('s').unwrap_or(n);
    let secs: f64 = n.parse().ok().filter(|s: &f64| s.is_finite() && *s >= 0.0 && *s <= MAX_SECONDS as f64)?;
    Some((secs * 1e9).round() as u64)
}

/// The lifecycle of the pods of `spec` (a Pod's spec, or a Deployment's
/// template spec at `prefix`), with the Deployment's own `deploy` spec.
fn lifecycle(
    o: &Origin,
    prefix: &str,
    spec: &Spec,
    deploy: Option<&Spec>,
    warnings: &mut Vec<String>,
) -> Result<Lifecycle, String> {
    let mut l = Lifecycle::default();
    if let Some(g) = &spec.termination_grace_period_seconds {
        l.grace_ns = seconds(o, &format!("{prefix}.terminationGracePeriodSeconds"), g)?;
    }
    if let Some((i, p)) =
        spec.containers.iter().enumerate().find_map(|(i, c)| c.readiness_probe.as_ref().map(|p| (i, p)))
    {
        let f = |k: &str| format!("{prefix}.containers[{i}].readinessProbe.{k}");
        let d = Probe::default();
        let q = &p.value;
        let period_s = count(o, &f("periodSeconds"), &q.period_seconds, (d.period_ns / 1_000_000_000) as u32)?;
        let initial = match &q.initial_delay_seconds {
            Some(v) => seconds(o, &f("initialDelaySeconds"), v)?,
            None => d.initial_delay_ns,
        };
        if period_s as i64 > MAX_SECONDS {
            let v = q.period_seconds.as_ref().expect("only a written period is that long");
            return Err(format!(
                "{}: {}: {} is more than {MAX_SECONDS} seconds",
                at(o, v),
                f("periodSeconds"),
                v.value
            ));
        }
        l.readiness = Some(Probe {
            initial_delay_ns: initial,
            period_ns: period_s as u64 * 1_000_000_000,
            success_threshold: count(o, &f("successThreshold"), &q.success_threshold, d.success_threshold)?,
            failure_threshold: count(o, &f("failureThreshold"), &q.failure_threshold, d.failure_threshold)?,
        });
    }
    if let Some((i, h)) = spec
        .containers
        .iter()
        .enumerate()
        .find_map(|(i, c)| c.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref()).map(|h| (i, h)))
    {
        let f = format!("{prefix}.containers[{i}].lifecycle.preStop");
        if let Some(sl) = &h.value.sleep {
            l.pre_stop_ns = seconds(o, &format!("{f}.sleep.seconds"), &sl.seconds)?;
        } else if let Some(ns) = h.value.exec.as_ref().and_then(|e| sleep_command(&e.command)) {
            l.pre_stop_ns = ns;
        } else {
            warnings.push(format!(
                "{}: {f}: only a sleep (exec `sleep N` or `sleep: {{seconds: N}}`) is modelled; emu models this hook as no delay",
                at(o, h)
            ));
        }
    }
    let Some(d) = deploy else { return Ok(l) };
    if let Some(m) = &d.min_ready_seconds {
        l.min_ready_ns = seconds(o, "spec.minReadySeconds", m)?;
    }
    if let Some(st) = &d.strategy {
        match st.value.kind.as_deref() {
            None | Some("RollingUpdate") => {}
            Some("Recreate") => {
                if st.value.rolling_update.is_some() {
                    return Err(format!(
                        "{}: spec.strategy.rollingUpdate: not allowed with strategy type Recreate",
                        at(o, st)
                    ));
                }
                l.max_surge = IntOrPercent::Int(0);
                l.max_unavailable = IntOrPercent::Percent(100);
            }
            Some(other) => {
                return Err(format!("{}: spec.strategy.type `{other}` is not RollingUpdate or Recreate", at(o, st)))
            }
        }
        if let Some(r) = &st.value.rolling_update {
            if let Some(v) = &r.max_surge {
                l.max_surge = int_or_percent(o, "spec.strategy.rollingUpdate.maxSurge", v)?;
            }
            if let Some(v) = &r.max_unavailable {
                l.max_unavailable = int_or_percent(o, "spec.strategy.rollingUpdate.maxUnavailable", v)?;
            }
            if l.max_surge.scaled(100, true) == 0 && l.max_unavailable.scaled(100, false) == 0 {
                return Err(format!(
                    "{}: spec.strategy.rollingUpdate: maxSurge and maxUnavailable cannot both be 0",
                    at(o, st)
                ));
            }
        }
    }
    Ok(l)
}
