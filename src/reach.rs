//! `emu reach`: who can talk to whom under the scenario's NetworkPolicies.
//!
//! For every (source pod, destination pod, port, protocol) it asks the
//! policies exactly what the data path asks a connection's first packet
//! (`Policies::egress` on the source's node, `Policies::ingress` on the
//! destination's, pod to pod IP): one source of truth. The matrix is
//! printed in the format of the truth tables the upstream Kubernetes
//! NetworkPolicy e2e tests print (`.` allowed, `X` denied; rows are
//! sources, columns destinations), one per port, and written as
//! `reach.csv`. A pod reaching itself is always allowed (no CNI sees
//! traffic inside one network namespace).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

use emu_models::cluster::{Cluster, Pod, Protocol};
use emu_models::ids::PodId;
use emu_models::policy::{Packet, Verdict};

/// Above this many pods in scope, one pod per workload is shown.
pub const MAX_PODS: usize = 40;

/// What to show.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Only this destination port (every port the pods listen on otherwise).
    pub port: Option<u16>,
    /// Only this protocol (with `port`: TCP when absent).
    pub protocol: Option<Protocol>,
    /// Only pods of this namespace (user-declared pods of every namespace
    /// otherwise).
    pub namespace: Option<String>,
}

/// One cell: the two checks of a first packet.
#[derive(Clone, Copy, Debug)]
pub struct Cell {
    /// The egress check on the source's node.
    pub egress: Verdict,
    /// The ingress check on the destination's node.
    pub ingress: Verdict,
    /// Whether the destination listens on the port.
    pub listening: bool,
}

impl Cell {
    /// Whether the first packet passes both checks.
    pub fn allowed(&self) -> bool {
        self.egress.allowed && self.ingress.allowed
    }
}

/// The reachability of the pods in scope.
pub struct Reach {
    /// The pods, in cluster order.
    pub pods: Vec<PodId>,
    /// Whether `pods` holds one pod per workload (the scope had more than
    /// [`MAX_PODS`] pods).
    pub per_workload: bool,
    /// One matrix per (port, protocol): `cells[from][to]`.
    pub tables: Vec<(u16, Protocol, Vec<Vec<Cell>>)>,
}

/// Evaluates the reachability of `cl`'s pods.
pub fn reach(cl: &Cluster, opts: &Options) -> Result<Reach, String> {
    let ns = match &opts.namespace {
        Some(n) => Some(cl.namespace(n).ok_or_else(|| format!("--namespace {n}: no such namespace"))?),
        None => None,
    };
    let in_scope = |p: &Pod| match ns {
        Some(ns) => p.namespace == ns,
        None => !cl.workloads[p.workload as usize].origin.is_builtin(),
    };
    let mut pods: Vec<PodId> =
        (0..cl.pods.len()).map(PodId::from_index).filter(|p| in_scope(&cl.pods[p.index()])).collect();
    let per_workload = pods.len() > MAX_PODS;
    if per_workload {
        let mut seen = BTreeSet::new();
        pods.retain(|p| seen.insert(cl.pods[p.index()].workload));
    }
    let ports: Vec<(u16, Protocol)> = match opts.port {
        Some(p) => vec![(p, opts.protocol.unwrap_or(Protocol::Tcp))],
        None => {
            let all: BTreeSet<(u16, Protocol)> = pods
                .iter()
                .flat_map(|p| cl.pods[p.index()].listens.iter().map(|l| (l.port, l.protocol)))
                .filter(|&(_, pr)| opts.protocol.is_none_or(|want| want == pr))
                .collect();
            all.into_iter().collect()
        }
    };
    let tables = ports
        .into_iter()
        .map(|(port, protocol)| {
            let cells =
                pods.iter().map(|&from| pods.iter().map(|&to| cell(cl, from, to, port, protocol)).collect()).collect();
            (port, protocol, cells)
        })
        .collect();
    Ok(Reach { pods, per_workload, tables })
}

/// The two checks of a first packet from pod `from` to pod `to`'s IP.
fn cell(cl: &Cluster, from: PodId, to: PodId, port: u16, protocol: Protocol) -> Cell {
    let (f, t) = (&cl.pods[from.index()], &cl.pods[to.index()]);
    let listening = t.listens_on(port, protocol).is_some();
    if from == to {
        let open = Verdict { allowed: true, ..Default::default() };
        return Cell { egress: open, ingress: open, listening };
    }
    let pkt = Packet {
        from: Some((f, f.ip)),
        src: f.ip,
        to: t,
        to_ip: t.ip,
        to_node: &cl.nodes[t.node.index()],
        port,
        protocol,
    };
    let egress = cl.policies.egress(&pkt).expect("a source pod");
    Cell { egress, ingress: cl.policies.ingress(&pkt), listening }
}

/// The matrices as text, in the upstream e2e tests' truth-table format.
pub fn render(cl: &Cluster, r: &Reach) -> String {
    let names: Vec<String> = r.pods.iter().map(|&p| cl.pod_ref(p)).collect();
    let width = names.iter().map(String::len).max().unwrap_or(1).max(1);
    let mut out = String::new();
    if r.per_workload {
        let _ = writeln!(out, "(one pod per workload: more than {MAX_PODS} pods in scope)");
    }
    for (port, protocol, cells) in &r.tables {
        let allowed = cells.iter().flatten().filter(|c| c.allowed()).count();
        let _ = writeln!(out, "reachability {port}/{protocol}: {allowed} of {} allowed", cells.len() * cells.len());
        let mut line = |first: &str, rest: &mut dyn Iterator<Item = &str>| {
            let mut l = format!("{first:<width$}");
            for x in rest {
                let _ = write!(l, " {x:<width$}");
            }
            out.push_str(l.trim_end());
            out.push('\n');
        };
        line("-", &mut names.iter().map(String::as_str));
        for (n, row) in names.iter().zip(cells) {
            line(n, &mut row.iter().map(|c| if c.allowed() { "." } else { "X" }));
        }
        out.push('\n');
    }
    if r.tables.is_empty() {
        out.push_str("no port: the pods in scope listen on none (name one with --port)\n");
    }
    out
}

/// What one check says in `reach.csv`: `open` (not isolated), `allow
/// NS/NAME` (the first policy whose rule admitted it), `node` (from the
/// pod's own node), or `deny`.
fn says(cl: &Cluster, v: &Verdict) -> String {
    match (v.allowed, v.isolated, v.by) {
        (true, false, _) => "open".into(),
        (true, true, Some(p)) => {
            let p = &cl.policies.list[p as usize];
            format!("allow {}/{}", cl.namespaces[p.namespace as usize], p.name)
        }
        (true, true, None) => "node".into(),
        (false, ..) => "deny".into(),
    }
}

/// Writes `reach.csv` into `dir`.
pub fn write_csv(cl: &Cluster, r: &Reach, dir: &Path) -> Result<(), String> {
    let path = dir.join("reach.csv");
    let mut w = csv::Writer::from_path(&path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let mut row = |cells: &[&str]| w.write_record(cells).map_err(|e| format!("cannot write {}: {e}", path.display()));
    row(&["from", "to", "port", "protocol", "allowed", "egress", "ingress", "listening"])?;
    for (port, protocol, cells) in &r.tables {
        for (&from, line) in r.pods.iter().zip(cells) {
            for (&to, c) in r.pods.iter().zip(line) {
                row(&[
                    &cl.pod_ref(from),
                    &cl.pod_ref(to),
                    &port.to_string(),
                    &protocol.to_string(),
                    if c.allowed() { "true" } else { "false" },
                    &says(cl, &c.egress),
                    &says(cl, &c.ingress),
                    if c.listening { "true" } else { "false" },
                ])?;
            }
        }
    }
    w.flush().map_err(|e| format!("cannot write {}: {e}", path.display()))
}
