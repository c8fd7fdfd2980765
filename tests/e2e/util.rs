//! Helpers: run the binary, read CSVs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn emu(args: &[&str]) -> Output {
    emu_in(&root(), args)
}

/// Runs the binary with `dir` as its working directory.
pub fn emu_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_emu")).args(args).current_dir(dir).output().expect("emu runs")
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Writes `text` as a scenario in a new temporary directory and runs it
/// (panicking with stderr on failure): the directory, kept alive by the
/// returned guard, and the results directory in it.
pub fn run_text(text: &str, extra: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let sc = write(tmp.path(), "s.toml", text);
    let out = tmp.path().join("out");
    run_ok(&sc, &out, extra);
    (tmp, out)
}

/// Requests each endpoint of `service` served, in endpoints.csv order.
pub fn hits(out: &Path, service: &str) -> Vec<u64> {
    csv(&out.join("endpoints.csv"))
        .iter()
        .filter(|r| r["service"] == service)
        .map(|r| r["requests"].parse().unwrap())
        .collect()
}

/// Runs `emu run scenario --out dir` and panics with stderr on failure.
pub fn run_ok(scenario: &Path, out: &Path, extra: &[&str]) {
    let mut args = vec!["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = emu(&args);
    assert!(o.status.success(), "emu run {} failed: {}", scenario.display(), stderr(&o));
}

pub type Row = HashMap<String, String>;

pub fn csv(path: &Path) -> Vec<Row> {
    let mut r = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let headers = r.headers().unwrap().clone();
    r.records()
        .map(|rec| headers.iter().zip(rec.unwrap().iter()).map(|(h, v)| (h.to_string(), v.to_string())).collect())
        .collect()
}

pub fn f(row: &Row, col: &str) -> f64 {
    row.get(col).unwrap_or_else(|| panic!("no column {col}")).parse().unwrap()
}

/// The row of `rows` whose `key` column is `value`.
pub fn row<'a>(rows: &'a [Row], key: &str, value: &str) -> &'a Row {
    rows.iter().find(|r| r[key] == value).unwrap_or_else(|| panic!("no row with {key} = {value}"))
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Pearson's chi-square statistic of `counts` against a uniform split.
pub fn chi_square_uniform(counts: &[u64]) -> f64 {
    let total: u64 = counts.iter().sum();
    let expected = total as f64 / counts.len() as f64;
    counts.iter().map(|&c| (c as f64 - expected).powi(2) / expected).sum()
}
