//! The report of a run (`emu plot DIR`, `emu run --plot`): SVG charts in
//! `DIR/plots/` and an `index.html` that shows them with the run's
//! scenario, drawn from the CSV files the run wrote (so a report can be
//! made again from results alone).
//!
//! One run (no sweep keys): latency percentiles per flow, where the time
//! goes (the hops as stacked bars per flow), throughput, p99 and failures
//! over time, endpoint balance per Service, first-packet cost per flow.
//! A sweep: one line chart per measure against the swept key (the numeric
//! key with the most values), one line per value of the other keys (and
//! per flow when there are several), plus the hop breakdown per point.

mod charts;
mod page;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use charts::Series;

/// The chart files the report writes, but the sweep measures' (see
/// [`is_chart_file`]).
const CHART_FILES: [&str; 7] = [
    "latency.svg",
    "first-packet.svg",
    "hops.svg",
    "throughput.svg",
    "p99-over-time.svg",
    "failures-over-time.svg",
    "balance.svg",
];

/// Whether `name` is a chart file the report writes (a `plots/` holding
/// only such files is emu's to replace).
pub fn is_chart_file(name: &str) -> bool {
    CHART_FILES.contains(&name) || SWEEP_MEASURES.iter().any(|(col, _)| name == format!("sweep-{col}.svg"))
}

/// Whether `text` is an `index.html` the report wrote.
pub fn is_report_page(text: &[u8]) -> bool {
    text.starts_with(page::HEAD.as_bytes())
}

/// A chart of the report.
pub struct Chart {
    /// Its file in `plots/`.
    pub file: String,
    /// Its title.
    pub title: String,
    /// Its series' names (the legend).
    pub series: Vec<String>,
    /// The SVG document.
    pub svg: String,
}

/// A CSV file, as text.
struct Csv {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Csv {
    fn read(dir: &Path, name: &str) -> Result<Option<Csv>, String> {
        let path = dir.join(name);
        if !path.exists() {
            return Ok(None);
        }
        let mut r = csv::Reader::from_path(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let header = r.headers().map_err(|e| format!("{}: {e}", path.display()))?.iter().map(String::from).collect();
        let mut rows = Vec::new();
        for rec in r.records() {
            rows.push(rec.map_err(|e| format!("{}: {e}", path.display()))?.iter().map(String::from).collect());
        }
        let mut csv = Csv { header, rows };
        // A run with `--replications`: the report shows replication 0.
        if let Some(i) = csv.col("replication") {
            csv.rows.retain(|r| r[i] == "0");
        }
        Ok(Some(csv))
    }

    fn col(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }

    fn num(&self, row: &[String], name: &str) -> f64 {
        self.col(name).and_then(|i| row[i].parse().ok()).unwrap_or(0.0)
    }

    fn text<'a>(&self, row: &'a [String], name: &str) -> &'a str {
        self.col(name).map_or("", |i| row[i].as_str())
    }
}

/// The sweep keys of a results directory: summary.csv's columns before
/// `flow` (but `replication`: the report shows replication 0).
fn keys(summary: &Csv) -> Vec<String> {
    summary.header.iter().take_while(|h| *h != "flow").filter(|h| *h != "replication").cloned().collect()
}

/// Latency measures mean nothing for a row without completed requests.
fn measured(s: &Csv, row: &[String], col: &str) -> bool {
    let none = |c: &str| s.num(row, c) == 0.0;
    !((col.starts_with("latency") && none("completed")) || (col.starts_with("first_packet") && none("connections")))
}

/// A row's point label: its key values joined (empty for one run).
fn point(csv: &Csv, row: &[String], keys: &[String]) -> String {
    keys.iter().map(|k| csv.text(row, k)).collect::<Vec<_>>().join(", ")
}

/// Makes every chart of the results in `dir`.
pub fn charts(dir: &Path) -> Result<Vec<Chart>, String> {
    let summary = Csv::read(dir, "summary.csv")?
        .ok_or_else(|| format!("{}: no summary.csv: not a results directory of `emu run`", dir.display()))?;
    let keys = keys(&summary);
    let mut out = Vec::new();
    if keys.is_empty() {
        out.push(latency(&summary)?);
    } else {
        out.extend(sweep(&summary, &keys)?);
    }
    if let Some(hops) = Csv::read(dir, "hops.csv")? {
        out.push(hop_breakdown(&hops, &keys, &summary)?);
    }
    if let Some(ts) = Csv::read(dir, "timeseries.csv")? {
        out.extend(timeseries(&ts, &keys)?);
    }
    if let Some(eps) = Csv::read(dir, "endpoints.csv")? {
        out.push(balance(&eps, &keys)?);
    }
    if keys.is_empty() {
        out.push(first_packet(&summary)?);
    }
    Ok(out)
}

fn chart(file: &str, title: &str, series: &[Series], svg: String) -> Chart {
    Chart { file: file.into(), title: title.into(), series: series.iter().map(|s| s.name.clone()).collect(), svg }
}

/// Percentiles per flow (one run) as grouped bars: `cols` are (legend
/// name, summary.csv column), one bar each per flow that measured them.
fn per_flow(s: &Csv, cols: &[(&str, &str)], file: &str, title: &str, y: &str) -> Result<Chart, String> {
    let flows: Vec<String> = s.rows.iter().map(|r| s.text(r, "flow").to_string()).collect();
    let series: Vec<Series> = cols
        .iter()
        .map(|(name, col)| Series {
            name: (*name).into(),
            points: s
                .rows
                .iter()
                .enumerate()
                .filter(|(_, r)| measured(s, r, col))
                .map(|(i, r)| (i as f64, s.num(r, col)))
                .collect(),
        })
        .collect();
    let svg = charts::grouped_bars(title, "flow", y, &flows, &series)?;
    Ok(chart(file, title, &series, svg))
}

/// Latency percentiles per flow (one run).
fn latency(s: &Csv) -> Result<Chart, String> {
    let cols =
        [("p50", "latency_p50_us"), ("p90", "latency_p90_us"), ("p99", "latency_p99_us"), ("p99.9", "latency_p999_us")];
    per_flow(s, &cols, "latency.svg", "Latency percentiles per flow", "latency [us]")
}

/// First-packet cost percentiles per flow (one run).
fn first_packet(s: &Csv) -> Result<Chart, String> {
    let cols = [
        ("p1", "first_packet_p01_us"),
        ("p50", "first_packet_p50_us"),
        ("p90", "first_packet_p90_us"),
        ("p99", "first_packet_p99_us"),
    ];
    let title = "First-packet cost per flow (proxy lookup + conntrack entry)";
    per_flow(s, &cols, "first-packet.svg", title, "first-packet cost [us]")
}

/// The measures a sweep is charted by: (summary.csv column, label with unit).
const SWEEP_MEASURES: [(&str, &str); 6] = [
    ("latency_p50_us", "latency p50 [us]"),
    ("latency_p99_us", "latency p99 [us]"),
    ("throughput_rps", "throughput [requests/s]"),
    ("first_packet_p50_us", "first-packet cost p50 [us]"),
    ("first_packet_p99_us", "first-packet cost p99 [us]"),
    ("failed", "failed requests"),
];

/// A sweep chart's line: the row it first appears in, and its points.
type Line = (usize, Vec<(f64, f64)>);

/// One line chart per measure against the swept key.
fn sweep(s: &Csv, keys: &[String]) -> Result<Vec<Chart>, String> {
    // The x axis: the numeric key with the most distinct values (else the
    // first key, by position).
    let distinct = |k: &str| {
        let mut v: Vec<&str> = s.rows.iter().map(|r| s.text(r, k)).collect();
        v.sort_unstable();
        v.dedup();
        v.len()
    };
    let numeric = |k: &str| s.rows.iter().all(|r| s.text(r, k).parse::<f64>().is_ok());
    // (The first of equals: `max_by_key` would take the last.)
    let most = |numeric_only: bool| {
        let mut best: Option<&String> = None;
        for k in keys.iter().filter(|k| !numeric_only || numeric(k)) {
            if best.is_none_or(|b| distinct(k) > distinct(b)) {
                best = Some(k);
            }
        }
        best
    };
    let x = most(true).or_else(|| most(false)).expect("a sweep has keys").clone();
    let is_num = numeric(&x);
    let mut categories: Vec<String> = Vec::new();
    for r in &s.rows {
        let v = s.text(r, &x).to_string();
        if !categories.contains(&v) {
            categories.push(v);
        }
    }
    let flows: Vec<&str> = {
        let mut f: Vec<&str> = s.rows.iter().map(|r| s.text(r, "flow")).collect();
        f.dedup();
        f.sort_unstable();
        f.dedup();
        f
    };
    let others: Vec<&String> = keys.iter().filter(|k| **k != x).collect();
    let mut out = Vec::new();
    for (col, label) in SWEEP_MEASURES {
        let mut lines: BTreeMap<String, Line> = BTreeMap::new();
        for (i, r) in s.rows.iter().enumerate() {
            let mut name: Vec<String> = others.iter().map(|k| format!("{k} = {}", s.text(r, k))).collect();
            if flows.len() > 1 {
                name.push(s.text(r, "flow").to_string());
            }
            let name = if name.is_empty() { s.text(r, "flow").to_string() } else { name.join(", ") };
            let xv = if is_num {
                s.num(r, &x)
            } else {
                categories.iter().position(|c| c == s.text(r, &x)).unwrap_or(0) as f64
            };
            let e = lines.entry(name).or_insert((i, Vec::new()));
            if measured(s, r, col) {
                e.1.push((xv, s.num(r, col)));
            }
        }
        for line in lines.values_mut() {
            line.1.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        // Lines in the order their first row appears.
        let mut named: Vec<(String, Line)> = lines.into_iter().collect();
        named.sort_by_key(|(_, (first, _))| *first);
        let series: Vec<Series> = named.into_iter().map(|(name, (_, points))| Series { name, points }).collect();
        let title = format!("{} against {x}", label.split(" [").next().unwrap_or(label));
        let names = (!is_num).then_some(categories.as_slice());
        let svg = charts::lines(&title, &x, label, &series, names)?;
        out.push(chart(&format!("sweep-{col}.svg"), &title, &series, svg));
    }
    Ok(out)
}

/// Most hop kinds a breakdown shows by name (the rest are `other`).
const TOP_HOPS: usize = 9;
/// Most bars a breakdown or a timeseries shows.
const MAX_ROWS: usize = 24;

/// Where the time goes: per flow (and point), the hops' time per request,
/// stacked.
fn hop_breakdown(h: &Csv, keys: &[String], summary: &Csv) -> Result<Chart, String> {
    let mut rows: Vec<String> = Vec::new();
    for r in &summary.rows {
        let p = point(summary, r, keys);
        let label = if p.is_empty() {
            summary.text(r, "flow").to_string()
        } else {
            format!("{p}: {}", summary.text(r, "flow"))
        };
        if !rows.contains(&label) && rows.len() < MAX_ROWS {
            rows.push(label);
        }
    }
    let mut by_hop: BTreeMap<String, f64> = BTreeMap::new();
    for r in &h.rows {
        *by_hop.entry(h.text(r, "hop").to_string()).or_default() += h.num(r, "per_request_us");
    }
    let mut order: Vec<(String, f64)> = by_hop.into_iter().filter(|(_, v)| *v > 0.0).collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let shown: Vec<String> = order.iter().take(TOP_HOPS).map(|(k, _)| k.clone()).collect();
    let mut series: Vec<Series> = shown.iter().map(|k| Series { name: k.clone(), points: Vec::new() }).collect();
    let mut other = Series { name: "other".into(), points: Vec::new() };
    for r in &h.rows {
        let p = point(h, r, keys);
        let label = if p.is_empty() { h.text(r, "flow").to_string() } else { format!("{p}: {}", h.text(r, "flow")) };
        let Some(row) = rows.iter().position(|x| *x == label) else { continue };
        let v = h.num(r, "per_request_us");
        if v <= 0.0 {
            continue;
        }
        match shown.iter().position(|k| k == h.text(r, "hop")) {
            Some(i) => series[i].points.push((row as f64, v)),
            None => other.points.push((row as f64, v)),
        }
    }
    if !other.points.is_empty() {
        series.push(other);
    }
    let title = "Where the time goes: time per request by hop";
    let svg = charts::stacked_bars(title, "time per request [us]", &rows, &series)?;
    Ok(chart("hops.svg", title, &series, svg))
}

/// Throughput, p99 and failures over time, one line per flow (and point).
fn timeseries(t: &Csv, keys: &[String]) -> Result<Vec<Chart>, String> {
    let mut lines: Vec<(String, Vec<&Vec<String>>)> = Vec::new();
    for r in &t.rows {
        let p = point(t, r, keys);
        let name = if p.is_empty() { t.text(r, "flow").to_string() } else { format!("{p}: {}", t.text(r, "flow")) };
        match lines.iter().position(|(n, _)| *n == name) {
            Some(i) => lines[i].1.push(r),
            None if lines.len() < MAX_ROWS / 2 => lines.push((name, vec![r])),
            None => {}
        }
    }
    let specs = [
        ("throughput.svg", "Throughput over time", "throughput [requests/s]", "throughput_rps"),
        ("p99-over-time.svg", "Latency p99 over time", "latency p99 [us]", "latency_p99_us"),
        ("failures-over-time.svg", "Failed requests over time", "failed requests per interval", "failed"),
    ];
    let mut out = Vec::new();
    for (file, title, y, col) in specs {
        let series: Vec<Series> = lines
            .iter()
            .map(|(name, rows)| Series {
                name: name.clone(),
                points: rows.iter().map(|r| (t.num(r, "time_s"), t.num(r, col))).collect(),
            })
            .collect();
        let svg = if series.iter().all(|s| s.points.is_empty()) {
            charts::empty(title, "no intervals were recorded")?
        } else {
            charts::lines(title, "simulated time [s]", y, &series, None)?
        };
        out.push(chart(file, title, &series, svg));
    }
    Ok(out)
}

/// Most Services the balance chart shows.
const MAX_SERVICES: usize = 6;

/// Endpoint balance: each endpoint's share of its Service port's requests,
/// for the busiest Service ports (of the first point of a sweep).
fn balance(e: &Csv, keys: &[String]) -> Result<Chart, String> {
    let first = e.rows.first().map(|r| point(e, r, keys)).unwrap_or_default();
    let mut ports: Vec<(String, u64, Vec<f64>)> = Vec::new();
    for r in e.rows.iter().filter(|r| point(e, r, keys) == first) {
        let name = format!("{}/{} {}", e.text(r, "namespace"), e.text(r, "service"), e.text(r, "port"));
        let n = e.num(r, "requests") as u64;
        match ports.iter_mut().find(|p| p.0 == name) {
            Some(p) => {
                p.1 += n;
                p.2.push(e.num(r, "share"));
            }
            None => ports.push((name, n, vec![e.num(r, "share")])),
        }
    }
    ports.retain(|p| p.1 > 0);
    ports.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    ports.truncate(MAX_SERVICES);
    let most = ports.iter().map(|p| p.2.len()).max().unwrap_or(0);
    let groups: Vec<String> = (0..most).map(|i| format!("{}", i + 1)).collect();
    let series: Vec<Series> = ports
        .iter()
        .map(|(name, _, shares)| Series {
            name: format!("{name} ({} endpoints)", shares.len()),
            points: shares.iter().enumerate().map(|(i, &v)| (i as f64, v * 100.0)).collect(),
        })
        .collect();
    let title = if first.is_empty() {
        "Endpoint balance: each endpoint's share of its Service's requests".to_string()
    } else {
        format!("Endpoint balance ({first})")
    };
    let svg = if series.is_empty() {
        charts::empty(&title, "no Service port received requests")?
    } else {
        charts::grouped_bars(&title, "endpoint", "share of requests [%]", &groups, &series)?
    };
    Ok(chart("balance.svg", &title, &series, svg))
}

/// Writes the report of the results in `src` into `dest` (`plots/` and
/// `index.html`), titled `name` (where the results will be): `dest` is a
/// directory emu is writing (a run's temporary directory, or the one
/// [`crate::outdir::install_report`] then moves into place).
pub fn write(src: &Path, dest: &Path, name: &Path) -> Result<Vec<Chart>, String> {
    let charts = charts(src)?;
    let plots = dest.join("plots");
    fs::create_dir_all(&plots).map_err(|e| format!("cannot create {}: {e}", plots.display()))?;
    for c in &charts {
        let path = plots.join(&c.file);
        fs::write(&path, &c.svg).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    let run = fs::read_to_string(src.join("run.toml")).unwrap_or_default();
    let replicated = Csv::read(src, "summary.csv")?.is_some_and(|s| s.col("replication").is_some());
    let note =
        replicated.then_some("A run with replications: the charts show replication 0 (every CSV holds them all).");
    let html = page::html(&charts, &run, &name.display().to_string(), note);
    let path = dest.join("index.html");
    fs::write(&path, html).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(charts)
}
