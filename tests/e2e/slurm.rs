//! The shipped Slurm script on a real one-node Slurm cluster: a sweep in 4
//! shards as a job array, merged by a dependent job, byte-identical to one
//! `emu run`. Needs root and Debian's slurm-wlm and munge (`.ci/run`
//! installs them); skips with a notice where they are missing.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::*;

/// Stops the cluster's daemons however the test ends.
struct Cluster<'a>(&'a Path);

impl Drop for Cluster<'_> {
    fn drop(&mut self) {
        let script = root().join("tests/slurm/one-node.sh");
        let _ = Command::new("bash").arg(script).arg("stop").arg(self.0).status();
    }
}

fn have(tool: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().is_ok_and(|o| o.status.success())
}

#[test]
fn the_shipped_sbatch_script_runs_a_sweep_on_slurm_and_merges_it() {
    let root_user = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout == b"0\n");
    let tools = ["sbatch", "sinfo", "slurmctld", "slurmd", "munged"];
    if !root_user || !tools.iter().all(|t| have(t)) {
        eprintln!("notice: skipped: a Slurm cluster needs root and slurm-wlm and munge installed (apt-get install slurm-wlm munge)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("slurm");
    let up = Command::new("bash").arg(root().join("tests/slurm/one-node.sh")).arg("start").arg(&dir).output().unwrap();
    let _cluster = Cluster(&dir);
    assert!(up.status.success(), "the one-node cluster: {}", stderr(&up));
    let conf = dir.join("slurm.conf");
    let sc = write(tmp.path(), "sweep.toml", crate::shard::SWEEP);
    let out = tmp.path().join("results");
    let submit = Command::new(root().join("deploy/slurm/sweep.sbatch"))
        .args([sc.to_str().unwrap(), out.to_str().unwrap(), "4", "--", "--replications", "2"])
        .env("SLURM_CONF", &conf)
        .env("EMU", env!("CARGO_BIN_EXE_emu"))
        .output()
        .unwrap();
    assert!(submit.status.success(), "{}{}", String::from_utf8_lossy(&submit.stdout), stderr(&submit));
    assert!(String::from_utf8_lossy(&submit.stdout).contains("(4 shards), merge job"));
    // The merge job writes `results` last (atomically): wait for it.
    let start = Instant::now();
    while !out.join("run.toml").exists() {
        let queue = Command::new("squeue").env("SLURM_CONF", &conf).output().unwrap();
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "no merged results after 300 s; squeue:\n{}",
            String::from_utf8_lossy(&queue.stdout)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let shards: Vec<String> = (0..4).map(|k| format!("results.shards/shard-{k}")).collect();
    for s in &shards {
        assert!(tmp.path().join(s).join("manifest.toml").exists(), "{s}");
    }
    let one = tmp.path().join("one");
    run_ok(&sc, &one, &["--replications", "2", "--quiet"]);
    crate::shard::assert_same_tree(&one, &out);
}
