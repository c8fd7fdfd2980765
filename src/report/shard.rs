//! Sweeps across machines: a shard runs some of a run's jobs and writes
//! their rows; `emu merge` assembles shards into the results directory one
//! `emu run` writes, byte for byte.
//!
//! A job is one sweep point and one replication, numbered
//! `point * replications + replication` in the order `emu run` runs them.
//! Shard `K` of `N` holds the jobs `j` with `j % N == K`: a fixed
//! assignment, so shards can run anywhere, in any order, at once.
//!
//! A shard directory holds `manifest.toml` (emu's version, the hash of the
//! resolved scenario, `N`, `K`, the job numbers), `run.toml` and
//! `manifests/` as `emu run` writes them, `warnings.txt`, and every result
//! table with a leading `job` column and no row limit. The merge keeps the
//! rows in job order, applies the time-series limit as `emu run` does, and
//! drops the `job` column: derived columns are computed per job, from its
//! own raw data, by the shard, so nothing is averaged across shards.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{tables, Table, MAX_SERIES_ROWS};
use crate::outdir::TempDir;

/// The result tables' names, in the order `emu run` builds them: taken
/// from [`tables`] itself, so the two cannot drift apart.
pub(crate) fn table_names() -> Vec<&'static str> {
    tables(&[], &[], false).expect("empty tables").iter().map(|t| t.name).collect()
}

/// Which shard of how many.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// Its index, from 0.
    pub index: u32,
    /// How many shards the jobs are split into.
    pub count: u32,
}

impl Shard {
    /// Whether job `job` is this shard's.
    pub fn holds(self, job: u32) -> bool {
        job % self.count == self.index
    }

    /// `K/N`, or `auto` (the index and count from the engine's
    /// environment, read through `env`; `count` from `--shard-count`).
    pub fn parse(arg: &str, count: Option<u32>, env: &dyn Fn(&str) -> Option<String>) -> Result<Shard, String> {
        let shard = if arg == "auto" {
            from_environment(count, env)?
        } else {
            let (k, n) = arg.split_once('/').ok_or_else(|| format!("--shard {arg}: write K/N (0-based) or auto"))?;
            let num = |s: &str, what: &str| {
                s.trim().parse::<u32>().map_err(|_| format!("--shard {arg}: {what} `{s}` is not a whole number"))
            };
            let shard = Shard { index: num(k, "K")?, count: num(n, "N")? };
            if count.is_some_and(|c| c != shard.count) {
                return Err(format!("--shard {arg} and --shard-count {} disagree", count.unwrap_or(0)));
            }
            shard
        };
        if shard.count == 0 || shard.index >= shard.count {
            return Err(format!(
                "--shard: shard {} of {} does not exist (K runs from 0 to N - 1)",
                shard.index, shard.count
            ));
        }
        Ok(shard)
    }
}

/// The shard a Slurm array task or a Kubernetes Indexed Job pod is.
fn from_environment(count: Option<u32>, env: &dyn Fn(&str) -> Option<String>) -> Result<Shard, String> {
    let num = |name: &str| -> Result<Option<u32>, String> {
        match env(name) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse::<u32>()
                .map(Some)
                .map_err(|_| format!("--shard auto: {name}=`{v}` is not a whole number")),
        }
    };
    let (slurm, k8s) = (num("SLURM_ARRAY_TASK_ID")?, num("JOB_COMPLETION_INDEX")?);
    match (slurm, k8s) {
        (Some(_), Some(_)) => Err("--shard auto: both SLURM_ARRAY_TASK_ID and JOB_COMPLETION_INDEX are set: \
                                   write --shard K/N"
            .into()),
        (Some(id), None) => {
            let n = num("SLURM_ARRAY_TASK_COUNT")?.ok_or(
                "--shard auto: SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not (an array job sets both)",
            )?;
            let min = num("SLURM_ARRAY_TASK_MIN")?
                .ok_or("--shard auto: SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_MIN is not")?;
            let step = num("SLURM_ARRAY_TASK_STEP")?.unwrap_or(1).max(1);
            if id < min || (id - min) % step != 0 {
                return Err(format!("--shard auto: SLURM_ARRAY_TASK_ID {id} is not in the array from {min} by {step}"));
            }
            let k = (id - min) / step;
            if count.is_some_and(|c| c != n) {
                return Err(format!(
                    "--shard auto: --shard-count {} disagrees with SLURM_ARRAY_TASK_COUNT {n}",
                    count.unwrap_or(0)
                ));
            }
            if k >= n {
                return Err(format!(
                    "--shard auto: task {id} is number {k} of an array of {n} (SLURM_ARRAY_TASK_MIN {min}, step {step}): \
                     an array with gaps cannot be split evenly"
                ));
            }
            Ok(Shard { index: k, count: n })
        }
        (None, Some(k)) => {
            let n = match (count, num("EMU_SHARD_COUNT")?) {
                (Some(c), _) | (None, Some(c)) => c,
                (None, None) => {
                    return Err(
                        "--shard auto: JOB_COMPLETION_INDEX is set (a Kubernetes Indexed Job) but the Job does \
                                not export its completions: pass --shard-count N or set EMU_SHARD_COUNT"
                            .into(),
                    )
                }
            };
            Ok(Shard { index: k, count: n })
        }
        (None, None) => Err("--shard auto: neither SLURM_ARRAY_TASK_ID (a Slurm job array) nor JOB_COMPLETION_INDEX \
                             (a Kubernetes Indexed Job) is set"
            .into()),
    }
}

/// A shard directory's `manifest.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Manifest {
    /// The emu that wrote it.
    pub emu_version: String,
    /// FNV-1a (64 bit) of run.toml and the manifests beside it.
    pub scenario_hash: String,
    /// How many shards.
    pub shards: u32,
    /// This one.
    pub shard: u32,
    /// Jobs of the whole run.
    pub jobs_total: u32,
    /// The leading key columns of every table.
    pub keys: Vec<String>,
    /// The jobs it holds.
    pub jobs: Vec<u32>,
}

/// FNV-1a, 64 bit: a stable hash, the same on every machine.
fn fnv1a(h: &mut u64, bytes: &[u8]) {
    for &b in bytes {
        *h ^= b as u64;
        *h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
}

/// The hash of the resolved scenario in `dir`: its run.toml and manifests.
pub(crate) fn scenario_hash(dir: &Path) -> Result<String, String> {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    let read = |p: &Path| fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
    fnv1a(&mut h, &read(&dir.join("run.toml"))?);
    let m = dir.join("manifests");
    if m.is_dir() {
        let mut names: Vec<PathBuf> =
            fs::read_dir(&m).map_err(|e| e.to_string())?.filter_map(|e| e.ok().map(|e| e.path())).collect();
        names.sort();
        for p in names {
            fnv1a(&mut h, p.file_name().unwrap_or_default().as_encoded_bytes());
            fnv1a(&mut h, &read(&p)?);
        }
    }
    Ok(format!("fnv1a64:{h:016x}"))
}

/// Writes a shard's files into `dir` (run.toml already there).
pub(crate) fn write_shard(
    dir: &Path,
    tables: &[Table],
    manifest: &Manifest,
    warnings: &[(u32, String)],
) -> Result<(), String> {
    for t in tables {
        t.write(dir, true)?;
    }
    let text = toml::to_string(manifest).map_err(|e| e.to_string())?;
    let header = "# A shard of an emu run: assemble the shards with `emu merge OUT SHARD_DIR...`.\n";
    fs::write(dir.join("manifest.toml"), format!("{header}{text}")).map_err(|e| e.to_string())?;
    let mut w = String::new();
    for (job, text) in warnings {
        w.push_str(&format!("{job}\t{}\n", text.replace('\n', " ")));
    }
    fs::write(dir.join("warnings.txt"), w).map_err(|e| e.to_string())
}

/// The warnings of `dirs`' jobs (`warnings.txt`), in job order.
pub(super) fn job_warnings(dirs: &[&Path]) -> Vec<(u32, String)> {
    let mut by_job: Vec<(u32, String)> = Vec::new();
    for d in dirs {
        let text = fs::read_to_string(d.join("warnings.txt")).unwrap_or_default();
        for l in text.lines() {
            if let Some((j, w)) = l.split_once('\t') {
                by_job.push((j.parse().unwrap_or(0), w.to_string()));
            }
        }
    }
    by_job.sort_by_key(|(j, _)| *j);
    by_job
}

/// One shard as read back.
pub(super) struct Read {
    pub(super) dir: PathBuf,
    pub(super) manifest: Manifest,
}

pub(super) fn read_manifest(dir: &Path) -> Result<Manifest, String> {
    let path = dir.join("manifest.toml");
    let text = fs::read_to_string(&path)
        .map_err(|e| format!("{}: not a shard directory of emu's ({}: {e})", dir.display(), path.display()))?;
    toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Checks that `shards` are one run's, complete and without overlap.
fn check(shards: &[Read]) -> Result<(), String> {
    let first = &shards[0];
    let here = env!("CARGO_PKG_VERSION");
    let mut owner: BTreeMap<u32, &Path> = BTreeMap::new();
    for s in shards {
        let (m, d) = (&s.manifest, s.dir.display());
        if m.emu_version != here {
            return Err(format!(
                "{d}: written by emu {}, this is emu {here}: merge shards with the emu that ran them",
                m.emu_version
            ));
        }
        if m.scenario_hash != first.manifest.scenario_hash || m.jobs_total != first.manifest.jobs_total {
            return Err(format!(
                "{d}: a shard of another scenario than {} (its run.toml differs: scenario hash {} against {})",
                first.dir.display(),
                m.scenario_hash,
                first.manifest.scenario_hash
            ));
        }
        if m.keys != first.manifest.keys {
            return Err(format!("{d}: its tables' key columns differ from {}'s", first.dir.display()));
        }
        for &j in &m.jobs {
            if j >= m.jobs_total {
                return Err(format!("{d}: job {j} is past the run's {} jobs", m.jobs_total));
            }
            if let Some(other) = owner.insert(j, &s.dir) {
                return Err(format!("{d}: job {j} is also in {} (a shard given twice?)", other.display()));
            }
        }
    }
    let missing: Vec<String> =
        (0..first.manifest.jobs_total).filter(|j| !owner.contains_key(j)).map(|j| j.to_string()).collect();
    if !missing.is_empty() {
        let shown = if missing.len() > 20 {
            format!("{} and {} more", missing[..20].join(", "), missing.len() - 20)
        } else {
            missing.join(", ")
        };
        return Err(format!(
            "{} of {} jobs are in no shard given: {shown} (shards of {} were expected)",
            missing.len(),
            first.manifest.jobs_total,
            first.manifest.shards
        ));
    }
    Ok(())
}

/// Reads table `name` of every shard into one table, rows in job order
/// (`limit`: the time series to emu's limit, as results have it).
pub(super) fn merge_table(name: &'static str, shards: &[Read], limit: bool) -> Result<Table, String> {
    let keys = &shards[0].manifest.keys;
    let mut header: Option<Vec<String>> = None;
    let mut rows: Vec<(u32, Vec<String>)> = Vec::new();
    for s in shards {
        let path = s.dir.join(name);
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_path(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let mut records = r.records();
        let head: Vec<String> = match records.next() {
            Some(h) => h.map_err(|e| format!("{}: {e}", path.display()))?.iter().map(str::to_string).collect(),
            None => return Err(format!("{}: empty (no header)", path.display())),
        };
        if head.first().map(String::as_str) != Some("job") {
            return Err(format!("{}: not a shard's table (no `job` column first)", path.display()));
        }
        let head = head[1..].to_vec();
        match &header {
            Some(h) if *h != head => {
                return Err(format!("{}: its columns differ from {}'s", path.display(), shards[0].dir.display()))
            }
            _ => header = Some(head),
        }
        for rec in records {
            let rec = rec.map_err(|e| format!("{}: {e}", path.display()))?;
            let job =
                rec[0].parse::<u32>().map_err(|_| format!("{}: job `{}` is not a number", path.display(), &rec[0]))?;
            if !s.manifest.jobs.contains(&job) {
                return Err(format!("{}: a row of job {job}, which its manifest does not list", path.display()));
            }
            rows.push((job, rec.iter().skip(1).map(str::to_string).collect()));
        }
    }
    // Every job's rows come from one shard, in order: a stable sort keeps them.
    rows.sort_by_key(|(j, _)| *j);
    let header = header.unwrap_or_default();
    let columns: Vec<&str> = header[keys.len().min(header.len())..].iter().map(String::as_str).collect();
    let mut t = Table::new(name, keys, &columns)?;
    if name == "timeseries.csv" && limit {
        t.limit = Some(MAX_SERIES_ROWS);
    }
    for (job, r) in &rows {
        t.push(*job, r.iter().map(String::as_str));
    }
    Ok(t)
}

/// Copies run.toml and manifests/ from shard `from` into `to`.
pub(super) fn copy_scenario(from: &Path, to: &Path) -> Result<(), String> {
    let copy = |a: &Path, b: &Path| fs::copy(a, b).map(|_| ()).map_err(|e| format!("cannot copy {}: {e}", a.display()));
    copy(&from.join("run.toml"), &to.join("run.toml"))?;
    let m = from.join("manifests");
    if m.is_dir() {
        fs::create_dir_all(to.join("manifests")).map_err(|e| e.to_string())?;
        for e in fs::read_dir(&m).map_err(|e| e.to_string())? {
            let p = e.map_err(|e| e.to_string())?.path();
            copy(&p, &to.join("manifests").join(p.file_name().unwrap_or_default()))?;
        }
    }
    Ok(())
}

/// `emu merge OUT SHARD_DIR...`: writes into `out` what `emu run` writes
/// for the whole run. Returns the warnings to print and a one-line account.
pub fn merge(out: &Path, dirs: &[PathBuf], force: bool, plot: bool) -> Result<(Vec<String>, String), String> {
    if dirs.is_empty() {
        return Err("emu merge: name at least one shard directory".into());
    }
    let mut shards = Vec::with_capacity(dirs.len());
    for d in dirs {
        let manifest = read_manifest(d)?;
        let hash = scenario_hash(d)?;
        if hash != manifest.scenario_hash {
            return Err(format!("{}: run.toml or manifests/ changed since the shard was written", d.display()));
        }
        shards.push(Read { dir: d.clone(), manifest });
    }
    check(&shards)?;
    let mut tables = Vec::new();
    for name in table_names() {
        tables.push(merge_table(name, &shards, true)?);
    }
    super::replication::add_ci(&mut tables[0]);
    let tmp = TempDir::beside(out)?;
    for t in &tables {
        t.write(tmp.path(), false)?;
    }
    copy_scenario(&shards[0].dir, tmp.path())?;
    let mut warnings: Vec<String> = tables.iter().filter_map(|t| t.dropped.clone()).collect();
    if plot {
        if let Err(e) = crate::plot::write(tmp.path(), tmp.path(), out) {
            warnings.push(format!("no report: {e}"));
        }
    }
    tmp.commit(out, force)?;
    let dirs: Vec<&Path> = shards.iter().map(|s| s.dir.as_path()).collect();
    warnings.extend(job_warnings(&dirs).into_iter().map(|(_, w)| w));
    let jobs = shards[0].manifest.jobs_total;
    let line = format!("wrote {}: {} shard(s), {jobs} job(s) merged", out.display(), shards.len());
    Ok((warnings, line))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    #[test]
    fn shards_come_from_the_flag_or_the_engine_s_environment() {
        let none = env(&[]);
        assert_eq!(Shard::parse("1/4", None, &none), Ok(Shard { index: 1, count: 4 }));
        assert!(Shard::parse("4/4", None, &none).unwrap_err().contains("does not exist"));
        assert!(Shard::parse("1-4", None, &none).unwrap_err().contains("K/N"));
        assert!(Shard::parse("auto", None, &none).unwrap_err().contains("neither"));
        let slurm =
            env(&[("SLURM_ARRAY_TASK_ID", "12"), ("SLURM_ARRAY_TASK_COUNT", "4"), ("SLURM_ARRAY_TASK_MIN", "10")]);
        assert_eq!(Shard::parse("auto", None, &slurm), Ok(Shard { index: 2, count: 4 }));
        assert!(Shard::parse("auto", Some(3), &slurm).unwrap_err().contains("disagrees"));
        let stepped = env(&[
            ("SLURM_ARRAY_TASK_ID", "4"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
            ("SLURM_ARRAY_TASK_STEP", "2"),
        ]);
        assert_eq!(Shard::parse("auto", None, &stepped), Ok(Shard { index: 2, count: 3 }));
        let half = env(&[("SLURM_ARRAY_TASK_ID", "1")]);
        assert!(Shard::parse("auto", None, &half).unwrap_err().contains("SLURM_ARRAY_TASK_COUNT"));
        let k8s = env(&[("JOB_COMPLETION_INDEX", "3")]);
        assert!(Shard::parse("auto", None, &k8s).unwrap_err().contains("--shard-count"));
        assert_eq!(Shard::parse("auto", Some(5), &k8s), Ok(Shard { index: 3, count: 5 }));
        let k8s_env = env(&[("JOB_COMPLETION_INDEX", "0"), ("EMU_SHARD_COUNT", "2")]);
        assert_eq!(Shard::parse("auto", None, &k8s_env), Ok(Shard { index: 0, count: 2 }));
        let bad = env(&[("JOB_COMPLETION_INDEX", "x")]);
        assert!(Shard::parse("auto", Some(2), &bad).unwrap_err().contains("not a whole number"));
        let both = env(&[("JOB_COMPLETION_INDEX", "0"), ("SLURM_ARRAY_TASK_ID", "0")]);
        assert!(Shard::parse("auto", Some(2), &both).unwrap_err().contains("both"));
        assert!(Shard { index: 1, count: 3 }.holds(4) && !Shard { index: 1, count: 3 }.holds(5));
    }
}
