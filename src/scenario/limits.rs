//! What a scenario may ask for, checked before anything large is
//! allocated, and the estimate of what a run will need (docs/scenario.md,
//! "Limits"). The models own the limits of what they build (nodes and pods
//! in `emu_models::cluster`, parameters in `emu_models::params`, flows in
//! `emu_models::world`); these are the loader's.

use std::io::Read;
use std::path::Path;

/// Largest scenario or manifest file read [bytes]: 64 MiB.
pub const MAX_INPUT_BYTES: u64 = 64 << 20;

/// Most Services a `count` may make (emu's limit: 100x Kubernetes'
/// tested 10,000).
pub const MAX_SERVICES: u32 = 1_000_000;
/// Most NetworkPolicy objects a scenario may declare (emu's limit).
pub const MAX_POLICIES: u32 = 1_000_000;

/// Most flows a `count` may make.
pub const MAX_FLOWS: u32 = 100_000;

/// Most server entries a `count` may make.
pub const MAX_SERVERS: u32 = 100_000;

/// Most runs (sweep points x replications) in one invocation.
pub const MAX_RUNS: u64 = 100_000;

/// Most rows `timeseries.csv` may get, over all runs.
pub const MAX_SERIES_ROWS: u64 = 10_000_000;

/// Events a request costs at most, about: a new connection to a Service
/// with its DNS exchange (docs/performance.md counts 28.0 on a 10-node
/// cluster; an estimate).
const EVENTS_PER_REQUEST: u64 = 27;

/// Events per second of one thread at scale, about (docs/performance.md:
/// 2.7-3.4 M at 65,000 nodes, 5 M at 5,000; an estimate).
const EVENTS_PER_SECOND: f64 = 3e6;

/// Memory per pod, node, Service port and flow [bytes], an estimate with
/// room to spare: a loaded point costs these, and each run in flight
/// (one per thread) as much again for its run-time state. For
/// scale-65k.toml on 2 threads that gives 3.6 GB against the 864-887 MiB
/// peak measured (docs/performance.md; a pod now costs about 150 bytes,
/// models/tests/memory.rs): conservative on purpose, since it only
/// refuses what exceeds the machine.
const BYTES_PER_POD: u64 = 1_000;
const BYTES_PER_NODE: u64 = 2_000;
const BYTES_PER_PORT: u64 = 1_000;
const BYTES_PER_FLOW: u64 = 16_000;

/// Reads a scenario or manifest file: at most [`MAX_INPUT_BYTES`], UTF-8,
/// errors naming the file (and the line and column of invalid UTF-8).
pub fn read_input(path: &Path, shown: &str) -> Result<String, String> {
    let f = std::fs::File::open(path).map_err(|e| format!("{shown}: cannot read: {e}"))?;
    let mut bytes = Vec::new();
    f.take(MAX_INPUT_BYTES + 1).read_to_end(&mut bytes).map_err(|e| format!("{shown}: cannot read: {e}"))?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(format!("{shown}: larger than {} MiB, the most emu reads from one file", MAX_INPUT_BYTES >> 20));
    }
    String::from_utf8(bytes).map_err(|e| {
        let ok = e.utf8_error().valid_up_to();
        let text = std::str::from_utf8(&e.as_bytes()[..ok]).expect("valid up to here");
        let (l, c) = super::locate::line_col(text, ok);
        format!(
            "{shown}:{l}:{c}: invalid UTF-8 (byte 0x{:02x}): scenario and manifest files must be UTF-8",
            e.as_bytes()[ok]
        )
    })
}

/// What a whole invocation will need, about.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Estimate {
    /// Runs: points x replications.
    pub runs: u64,
    /// Requests over all runs (a duration-bounded open-loop flow counts
    /// rate x duration).
    pub requests: u64,
    /// Events over all runs.
    pub events: u64,
    /// Peak memory [bytes].
    pub memory: u64,
    /// Rows of timeseries.csv over all runs, at most, counting the flows
    /// whose span is known (open loops, and closed loops with a duration).
    pub series_rows: u64,
}

impl Estimate {
    /// Wall time at one thread per run on `threads` threads [s], about.
    pub fn seconds(&self, threads: u64) -> f64 {
        self.events as f64 / EVENTS_PER_SECOND / threads.clamp(1, self.runs.max(1)) as f64
    }
}

/// Requests one flow issues at most (`None`: unbounded, refused by the
/// world), and the span of simulated time it covers when known [ns].
pub fn flow_requests(f: &emu_models::traffic::Flow) -> Option<(u64, Option<u64>)> {
    use emu_models::traffic::Arrivals;
    let by_time = match (&f.arrivals, f.duration_ns) {
        (&Arrivals::Open { rate_per_s }, Some(d)) => {
            Some((rate_per_s * d as f64 / 1e9).ceil().min(u64::MAX as f64) as u64)
        }
        _ => None,
    };
    let n = match (f.requests, by_time) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) => a,
        (None, Some(b)) => b,
        (None, None) => match f.arrivals {
            // A closed loop bounded by time alone: one request per client
            // per think time at most is unknowable; count the clients' first.
            Arrivals::Closed { clients, .. } => clients as u64,
            Arrivals::Open { .. } => return None,
        },
    };
    let span = match f.arrivals {
        Arrivals::Open { rate_per_s } => Some((n as f64 / rate_per_s * 1e9) as u64),
        Arrivals::Closed { .. } => f.duration_ns,
    };
    Some((n, span))
}

/// The estimate of running every one of `points`, `scale` times over (to
/// project a whole sweep from its first point), `replications` times each,
/// on `threads` threads.
pub fn estimate(points: &[&super::Prepared], scale: u64, replications: u32, threads: u64) -> Estimate {
    let runs = points.len() as u64 * scale * replications as u64;
    let mut e = Estimate { runs, ..Default::default() };
    let mut loaded = 0u64;
    let mut largest = 0u64;
    for p in points {
        let c = &p.cluster;
        let bytes = c.pods.len() as u64 * BYTES_PER_POD
            + c.nodes.len() as u64 * BYTES_PER_NODE
            + c.service_ports.len() as u64 * BYTES_PER_PORT
            + p.flows.len() as u64 * BYTES_PER_FLOW;
        loaded += bytes;
        largest = largest.max(bytes);
        for f in &p.flows {
            let (n, span) = flow_requests(f).unwrap_or((0, None));
            // A closed loop without a duration has no known span: its rows
            // are capped when written ([`MAX_SERIES_ROWS`]), not refused.
            let rows = span.map_or(0, |s| (s / p.params.interval_ns.max(1) + 1).min(n.saturating_mul(3)));
            e.requests = e.requests.saturating_add(n.saturating_mul(replications as u64));
            e.series_rows = e.series_rows.saturating_add(rows.saturating_mul(replications as u64));
        }
    }
    e.requests = e.requests.saturating_mul(scale);
    e.series_rows = e.series_rows.saturating_mul(scale);
    e.events = e.requests.saturating_mul(EVENTS_PER_REQUEST);
    let loaded = loaded.saturating_mul(scale);
    e.memory = loaded.saturating_add(largest.saturating_mul(threads.clamp(1, e.runs.max(1))));
    e
}

/// Refuses what the estimate says cannot be done: more memory than the
/// machine has, or more time-series rows than [`MAX_SERIES_ROWS`].
/// Returns the key to blame (if one) and the message, which ends with the
/// whole run's size and time on `threads` threads.
pub fn refuse(e: &Estimate, threads: u64) -> Result<(), (Option<&'static str>, String)> {
    let size = format!(
        " (the whole run: {} requests, about {:.1e} events, about {} on {} thread(s))",
        e.requests,
        e.events as f64,
        human_time(e.seconds(threads)),
        threads.clamp(1, e.runs.max(1))
    );
    refuse_bare(e).map_err(|(k, m)| (k, m + &size))
}

fn refuse_bare(e: &Estimate) -> Result<(), (Option<&'static str>, String)> {
    if let Some(have) = machine_memory().filter(|&m| e.memory > m) {
        return Err((
            None,
            format!(
                "the run would need about {} of memory ({} run(s)), more than this machine's {}",
                bytes(e.memory),
                e.runs,
                bytes(have)
            ),
        ));
    }
    if e.series_rows > MAX_SERIES_ROWS {
        return Err((
            Some("output.interval"),
            format!(
                "timeseries.csv would get up to {} rows, more than emu's limit of {MAX_SERIES_ROWS}: \
                 use a longer interval",
                e.series_rows
            ),
        ));
    }
    Ok(())
}

/// The machine's memory [bytes], from /proc/meminfo (None elsewhere).
pub fn machine_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Human-readable bytes: `1.8 GiB`.
pub fn bytes(b: u64) -> String {
    let gib = b as f64 / (1u64 << 30) as f64;
    if gib >= 1.0 {
        format!("{gib:.1} GiB")
    } else {
        format!("{:.0} MiB", b as f64 / (1u64 << 20) as f64)
    }
}

/// Human-readable wall time: `12 min`, `3.5 h`, `40 days`.
pub fn human_time(secs: f64) -> String {
    match secs {
        s if s < 3600.0 => format!("{:.0} min", s / 60.0),
        s if s < 86_400.0 * 2.0 => format!("{:.1} h", s / 3600.0),
        s if s < 86_400.0 * 365.0 * 2.0 => format!("{:.0} days", s / 86_400.0),
        s => format!("{:.0} years", s / 86_400.0 / 365.0),
    }
}
