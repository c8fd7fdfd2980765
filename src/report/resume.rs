//! `emu run --resume`: a run that survives its interruption. Each finished
//! job's rows go to a job store beside the output directory,
//! `<OUT>.jobs/job-<j>/` (a one-job shard directory, renamed into place
//! whole), with the resolved scenario in `<OUT>.jobs/run.toml`. Run the
//! same command again and the jobs found there are not run again; the
//! results are then assembled from the store as `emu merge` assembles
//! shards (so they are byte-identical to an uninterrupted run), and the
//! store is removed. A store of another scenario is replaced, with a
//! warning.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use emu_models::world::Results;

use super::shard::{self, Manifest, Read, Shard};
use super::{replication, tables, write_run_toml, Run};
use crate::scenario::Loaded;

/// What a store's `manifest.toml` starts with: emu wrote the directory.
const HEADER: &str = "# The job store of a resumable emu run (`emu run --resume`).\n";

/// The job store of one run.
pub(crate) struct Store {
    dir: PathBuf,
    manifest: Manifest,
}

impl Store {
    /// Opens the store beside `out` for the run of `loaded` (`keys` its key
    /// columns, `jobs_total` its jobs), creating it if there is none or it
    /// is another scenario's; returns it with the jobs already in it.
    pub(crate) fn open(
        out: &Path,
        loaded: &Loaded,
        keys: &[String],
        jobs_total: u32,
        warnings: &mut Vec<String>,
    ) -> Result<(Store, BTreeSet<u32>), String> {
        let name = out.file_name().map_or("results".into(), |s| s.to_string_lossy().into_owned());
        let dir = out.with_file_name(format!("{name}.jobs"));
        // The scenario as this run resolves it, for its hash.
        let probe = out.with_file_name(format!(".{name}.jobs-probe-{}", std::process::id()));
        fs::create_dir_all(&probe).map_err(|e| format!("cannot create {}: {e}", probe.display()))?;
        let hash = write_run_toml(loaded, &probe).and_then(|()| shard::scenario_hash(&probe)).inspect_err(|_| {
            let _ = fs::remove_dir_all(&probe);
        })?;
        let manifest = Manifest {
            emu_version: env!("CARGO_PKG_VERSION").into(),
            scenario_hash: hash,
            shards: 1,
            shard: 0,
            jobs_total,
            keys: keys.to_vec(),
            jobs: Vec::new(),
        };
        let reusable = match fs::read_to_string(dir.join("manifest.toml")) {
            Ok(text) if text.starts_with(HEADER) => {
                let old: Manifest = toml::from_str(&text).map_err(|e| format!("{}: {e}", dir.display()))?;
                let same = old.scenario_hash == manifest.scenario_hash
                    && old.emu_version == manifest.emu_version
                    && old.keys == manifest.keys
                    && old.jobs_total == jobs_total;
                if !same {
                    warnings.push(format!("{}: the jobs of another scenario (or emu); starting afresh", dir.display()));
                    fs::remove_dir_all(&dir).map_err(|e| format!("cannot remove {}: {e}", dir.display()))?;
                }
                same
            }
            Ok(_) | Err(_) if dir.exists() => {
                let _ = fs::remove_dir_all(&probe);
                return Err(format!(
                    "{} exists and is not a job store of emu's: move it away to run with --resume",
                    dir.display()
                ));
            }
            _ => false,
        };
        if !reusable {
            fs::rename(&probe, &dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            let text = toml::to_string(&manifest).map_err(|e| e.to_string())?;
            fs::write(dir.join("manifest.toml"), format!("{HEADER}{text}")).map_err(|e| e.to_string())?;
        } else {
            let _ = fs::remove_dir_all(&probe);
        }
        let mut done = BTreeSet::new();
        for e in fs::read_dir(&dir).map_err(|e| e.to_string())?.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if let Some(j) = n.strip_prefix("job-").and_then(|j| j.parse::<u32>().ok()) {
                if j < jobs_total && e.path().join("manifest.toml").exists() {
                    done.insert(j);
                }
            }
        }
        Ok((Store { dir, manifest }, done))
    }

    /// Keeps one finished job's rows (and warnings) in the store.
    pub(crate) fn save(&self, run: &Run, res: &Results, horizon: &[(u32, String)]) -> Result<(), String> {
        let j = run.job;
        let tmp = self.dir.join(format!(".job-{j}.tmp-{}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(&tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
        let t = tables(&self.manifest.keys, &[(run, res)], false)?;
        let m = Manifest { jobs: vec![j], ..self.manifest.clone() };
        shard::write_shard(&tmp, &t, &m, horizon)?;
        let done = self.dir.join(format!("job-{j}"));
        let _ = fs::remove_dir_all(&done);
        fs::rename(&tmp, &done).map_err(|e| format!("cannot keep job {j} in {}: {e}", self.dir.display()))
    }

    /// Writes into `into` the results of the jobs `wanted` from the store:
    /// a results directory, or with `as_shard` that shard's directory.
    /// Returns the warnings, in job order.
    pub(crate) fn assemble(&self, into: &Path, wanted: &[u32], as_shard: Option<Shard>) -> Result<Vec<String>, String> {
        let mut reads = Vec::with_capacity(wanted.len());
        for &j in wanted {
            let dir = self.dir.join(format!("job-{j}"));
            let manifest = shard::read_manifest(&dir)?;
            reads.push(Read { dir, manifest });
        }
        let mut tables = Vec::new();
        for name in shard::table_names() {
            tables.push(shard::merge_table(name, &reads, as_shard.is_none())?);
        }
        shard::copy_scenario(&self.dir, into)?;
        let dirs: Vec<&Path> = reads.iter().map(|r| r.dir.as_path()).collect();
        let horizon = shard::job_warnings(&dirs);
        let mut warnings: Vec<String> = Vec::new();
        match as_shard {
            Some(sh) => {
                let m = Manifest { shards: sh.count, shard: sh.index, jobs: wanted.to_vec(), ..self.manifest.clone() };
                shard::write_shard(into, &tables, &m, &horizon)?;
            }
            None => {
                replication::add_ci(&mut tables[0]);
                for t in &tables {
                    t.write(into, false)?;
                }
                warnings.extend(tables.iter().filter_map(|t| t.dropped.clone()));
            }
        }
        warnings.extend(horizon.into_iter().map(|(_, w)| w));
        Ok(warnings)
    }

    /// Removes the store: its results are written.
    pub(crate) fn remove(self) -> Result<(), String> {
        fs::remove_dir_all(&self.dir).map_err(|e| format!("cannot remove {}: {e}", self.dir.display()))
    }
}
