//! The table `emu run` prints on stdout when it is done, the way wrk or
//! fortio end a run: per flow (per run, for sweeps and replications), the
//! requests, completions, failures and their main reason, p50 and p99
//! latency, throughput, and the hop that took the most time.

use std::fmt::Write as _;

use emu_engine::stats::Latency;
use emu_models::datapath::HopKind;
use emu_models::traffic::Failure;
use emu_models::world::{FlowStats, Results};

use super::Run;

/// Most rows printed; the rest are summed in one line.
pub const MAX_ROWS: usize = 20;

/// One row: what it is and its figures.
struct Row {
    label: String,
    requests: u64,
    completed: u64,
    failures: [u64; emu_models::traffic::FAILURES],
    latency: Latency,
    throughput: f64,
    hops: [u64; emu_models::datapath::HOP_KINDS],
}

impl Row {
    fn new(label: String) -> Row {
        Row {
            label,
            requests: 0,
            completed: 0,
            failures: [0; emu_models::traffic::FAILURES],
            latency: Latency::new(),
            throughput: 0.0,
            hops: [0; emu_models::datapath::HOP_KINDS],
        }
    }

    fn add(&mut self, f: &FlowStats) {
        self.requests += f.requests;
        self.completed += f.completed;
        for (a, b) in self.failures.iter_mut().zip(&f.failures) {
            *a += b;
        }
        self.latency.merge(&f.latency);
        self.throughput += f.throughput_rps();
        for (a, t) in self.hops.iter_mut().zip(&f.hops) {
            *a += t.sum;
        }
    }

    fn cells(&self) -> [String; 8] {
        let failed: u64 = self.failures.iter().sum();
        let main = Failure::ALL
            .into_iter()
            .filter(|&r| self.failures[r as usize] > 0)
            .max_by_key(|&r| (self.failures[r as usize], std::cmp::Reverse(r as usize)))
            .map_or(String::new(), |r| format!("{} {}", r.name(), self.failures[r as usize]));
        let total: u64 = self.hops.iter().sum();
        let top = HopKind::ALL
            .into_iter()
            .filter(|&k| self.hops[k as usize] > 0)
            .max_by_key(|&k| (self.hops[k as usize], std::cmp::Reverse(k as usize)))
            .map_or(String::new(), |k| {
                format!("{} {:.0}%", k.name(), 100.0 * self.hops[k as usize] as f64 / total as f64)
            });
        let (p50, p99) = if self.latency.count() == 0 {
            ("-".to_string(), "-".to_string())
        } else {
            let [p50, p99] = self.latency.quantiles_ns([0.5, 0.99]);
            (human(p50), human(p99))
        };
        [
            self.requests.to_string(),
            self.completed.to_string(),
            failed.to_string(),
            main,
            p50,
            p99,
            format!("{:.1}/s", self.throughput),
            top,
        ]
    }
}

/// A duration for people: `812ns`, `45.3us`, `1.27ms`, `3.41s` (a unit
/// is used while its rounded figure stays below 1,000).
pub fn human(ns: u64) -> String {
    let x = ns as f64;
    if ns < 1_000 {
        format!("{ns}ns")
    } else if x / 1e3 < 999.95 {
        format!("{:.1}us", x / 1e3)
    } else if x / 1e6 < 999.995 {
        format!("{:.2}ms", x / 1e6)
    } else {
        format!("{:.2}s", x / 1e9)
    }
}

/// The table of `runs`: one row per flow for a single run, one per run
/// (its swept values and replication) otherwise; at most [`MAX_ROWS`]
/// rows, the rest summed in a last line.
pub fn table(runs: &[(Run, Results)]) -> String {
    let mut rows: Vec<Row> = Vec::new();
    let first = if runs.len() == 1 { "flow" } else { "run" };
    if let [(_, res)] = runs {
        for f in &res.flows {
            let mut r = Row::new(f.name.clone());
            r.add(f);
            rows.push(r);
        }
    } else {
        for (run, res) in runs {
            let label = run.values.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ");
            let mut r = Row::new(label);
            for f in &res.flows {
                r.add(f);
            }
            rows.push(r);
        }
    }
    let rest = rows.len().saturating_sub(MAX_ROWS);
    // Runs are separate experiments: their throughputs are not summed.
    let per_run = runs.len() > 1;
    let mut shown: Vec<(String, [String; 8])> = Vec::new();
    let mut tail = Row::new(format!("({rest} more)"));
    for (i, r) in rows.iter().enumerate() {
        if i < MAX_ROWS {
            shown.push((r.label.clone(), r.cells()));
        } else {
            tail.requests += r.requests;
            tail.completed += r.completed;
            for (a, b) in tail.failures.iter_mut().zip(&r.failures) {
                *a += b;
            }
            tail.latency.merge(&r.latency);
            tail.throughput += r.throughput;
            for (a, b) in tail.hops.iter_mut().zip(&r.hops) {
                *a += b;
            }
        }
    }
    if rest > 0 {
        if per_run {
            tail.throughput /= rest as f64;
            tail.label = format!("({rest} more; mean throughput)");
        }
        shown.push((tail.label.clone(), tail.cells()));
    }
    let header = [first, "requests", "completed", "failed", "main failure", "p50", "p99", "throughput", "top hop"];
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for (label, cells) in &shown {
        widths[0] = widths[0].max(label.len());
        for (w, c) in widths[1..].iter_mut().zip(cells) {
            *w = (*w).max(c.len());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            // Text columns left, numbers right.
            if matches!(i, 0 | 4 | 8) {
                let _ = write!(l, "{c:<w$}  ");
            } else {
                let _ = write!(l, "{c:>w$}  ");
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for (label, cells) in &shown {
        let mut v = vec![label.as_str()];
        v.extend(cells.iter().map(String::as_str));
        line(v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::human;

    #[test]
    fn durations_change_unit_where_the_rounded_figure_reaches_1000() {
        assert_eq!(human(812), "812ns");
        assert_eq!(human(45_300), "45.3us");
        assert_eq!(human(999_940), "999.9us");
        assert_eq!(human(999_950), "1.00ms");
        assert_eq!(human(1_270_000), "1.27ms");
        assert_eq!(human(999_996_000), "1.00s");
    }
}
