//! `emu trace`: one request's walk, hop by hop, as text or JSON.
//!
//! The steps come from the run itself ([`emu_models::world::simulate_traced`]):
//! the hops its messages walked with their queueing, service and latency,
//! the proxy's decision, the NAT rewrites and conntrack entries at the
//! nodes that made them, the DNS exchange, the servers' time. Every step
//! with a duration follows the one before it without a gap, so the
//! durations add up to the request's latency; the closing line says so.

use std::fmt::Write as _;

use emu_models::world::{EventKind, Outcome, Step, Trace, What};

/// Microseconds with nanosecond precision.
fn us(ns: u64) -> String {
    format!("{}.{:03}", ns / 1_000, ns % 1_000)
}

/// The trace as text: a header, one line per step, and the totals.
pub fn text(t: &Trace, file: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "trace of request {} of flow `{}` in {file}", t.request, t.flow);
    let _ = writeln!(out, "{}", outcome_line(t));
    if t.outcome == Outcome::NotIssued {
        return out;
    }
    let _ = writeln!(out, "times from the request's issue at {} us; [us] = microseconds\n", us(t.start_ns));
    let _ = writeln!(
        out,
        "{:>11} {:>12}  {:<14} {:<8} {:<40} packet / what",
        "at [us]", "took [us]", "step", "node", "where"
    );
    for s in &t.steps {
        let at = us(s.at_ns - t.start_ns);
        match &s.what {
            What::Hop(h) => {
                let place = match (&h.pod, &h.to) {
                    (Some(p), _) => format!("{} ({p})", h.iface),
                    (None, Some(to)) => format!("{} > {to}", h.iface),
                    (None, None) => h.iface.clone(),
                };
                let mut parts = Vec::new();
                if h.queue_ns > 0 {
                    parts.push(format!("queued {}", us(h.queue_ns)));
                }
                if h.service_ns > 0 {
                    parts.push(format!("service {}", us(h.service_ns)));
                }
                if h.work_ns > 0 {
                    parts.push(format!("first-packet work {}", us(h.work_ns)));
                }
                let detail = if parts.is_empty() || (parts.len() == 1 && h.queue_ns == 0 && h.work_ns == 0) {
                    String::new()
                } else {
                    format!("  [{}]", parts.join(", "))
                };
                let _ = writeln!(
                    out,
                    "{at:>11} {:>12}  {:<14} {:<8} {place:<40} {} > {}{detail}",
                    us(s.ns),
                    h.kind.name(),
                    h.node.as_deref().unwrap_or("-"),
                    h.src,
                    h.dst
                );
            }
            What::Server { kind, node, pod, queue_ns, service_ns } => {
                let place = format!("{kind} ({})", pod.as_deref().unwrap_or("host"));
                let _ = writeln!(
                    out,
                    "{at:>11} {:>12}  {:<14} {node:<8} {place:<40} queued {}, served {}",
                    us(s.ns),
                    "server",
                    us(*queue_ns),
                    us(*service_ns)
                );
            }
            What::Wait { reason } => {
                let _ = writeln!(out, "{at:>11} {:>12}  {:<14} {:<8} {:<40} {reason}", us(s.ns), "wait", "-", "");
            }
            What::Event { kind, node, text } => {
                let mark = if *kind == EventKind::Send { format!("> {}", kind.name()) } else { kind.name().into() };
                let _ = writeln!(
                    out,
                    "{at:>11} {:>12}  {mark:<14} {:<8} {:<40} {text}",
                    "",
                    node.as_deref().unwrap_or(""),
                    ""
                );
            }
        }
    }
    let timed: u64 = t.steps.iter().map(|s| s.ns).sum();
    let _ = writeln!(
        out,
        "\n{} steps; their times add up to {} us, the request's {} of {} us",
        t.steps.len(),
        us(timed),
        if matches!(t.outcome, Outcome::Completed(_)) { "latency" } else { "time" },
        us(t.end_ns - t.start_ns)
    );
    out
}

fn outcome_line(t: &Trace) -> String {
    match t.outcome {
        Outcome::Completed(ns) => format!("completed: latency {} us", us(ns)),
        Outcome::Failed(why) => format!("failed: {} after {} us", why.name(), us(t.end_ns - t.start_ns)),
        Outcome::NotIssued => "the flow did not issue this request".into(),
    }
}

fn step_json(s: &Step) -> serde_json::Value {
    use serde_json::json;
    let mut v = match &s.what {
        What::Hop(h) => json!({
            "type": "hop",
            "kind": h.kind.name(),
            "node": h.node,
            "pod": h.pod,
            "iface": h.iface,
            "to_node": h.to,
            "src": h.src.to_string(),
            "dst": h.dst.to_string(),
            "queue_ns": h.queue_ns,
            "service_ns": h.service_ns,
            "work_ns": h.work_ns,
            "latency_ns": h.latency_ns,
        }),
        What::Server { kind, node, pod, queue_ns, service_ns } => json!({
            "type": "server", "kind": kind, "node": node, "pod": pod, "queue_ns": queue_ns, "service_ns": service_ns,
        }),
        What::Wait { reason } => json!({ "type": "wait", "reason": reason }),
        What::Event { kind, node, text } => json!({ "type": "event", "kind": kind.name(), "node": node, "text": text }),
    };
    v["at_ns"] = json!(s.at_ns);
    v["ns"] = json!(s.ns);
    v
}

/// The trace as one JSON document (integer nanoseconds throughout).
pub fn json(t: &Trace) -> String {
    use serde_json::json;
    let (outcome, reason, latency) = match t.outcome {
        Outcome::Completed(ns) => ("completed", None, Some(ns)),
        Outcome::Failed(why) => ("failed", Some(why.name()), None),
        Outcome::NotIssued => ("not_issued", None, None),
    };
    let doc = json!({
        "flow": t.flow,
        "request": t.request,
        "outcome": outcome,
        "failure": reason,
        "latency_ns": latency,
        "start_ns": t.start_ns,
        "end_ns": t.end_ns,
        "steps": t.steps.iter().map(step_json).collect::<Vec<_>>(),
    });
    let mut s = serde_json::to_string_pretty(&doc).expect("a JSON value prints");
    s.push('\n');
    s
}
