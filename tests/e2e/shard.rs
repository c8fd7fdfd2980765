//! Sweeps split into shards (`emu run --shard`) and merged (`emu merge`):
//! the merge is byte-identical to one `emu run`, and refuses shards that
//! do not make one run.

use std::path::{Path, PathBuf};

use crate::util::*;

/// A sweep of 2 x 2 points: 12 jobs with 3 replications.
pub const SWEEP: &str = r#"seed = 5
[cluster]
nodes = 3
[sweep]
"proxy.mode" = ["iptables", "ipvs"]
"flows[0].rate" = [500, 2000]
[[pods]]
name = "web"
replicas = 3
labels = { app = "web" }
ports = [8080]
[[pods]]
name = "client"
[[services]]
name = "web"
selector = { app = "web" }
ports = [{ port = 80, target_port = 8080 }]
[[servers]]
selector = { app = "web" }
port = 8080
service_time = "exp(200us)"
[[flows]]
name = "f"
from = "client"
to = "http://web:80"
rate = 500
requests = 300
"#;

/// Every file under `dir`, relative, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

pub fn assert_same_tree(a: &Path, b: &Path) {
    let (fa, fb) = (files(a), files(b));
    assert_eq!(fa, fb, "the same files");
    for f in fa {
        assert!(std::fs::read(a.join(&f)).unwrap() == std::fs::read(b.join(&f)).unwrap(), "{} differs", f.display());
    }
}

/// Runs `sc` as `n` shards (with `extra` arguments) into `dir/s<k>`.
fn shards(sc: &Path, dir: &Path, n: u32, extra: &[&str]) -> Vec<PathBuf> {
    (0..n)
        .map(|k| {
            let out = dir.join(format!("s{k}"));
            let shard = format!("{k}/{n}");
            let mut args =
                vec!["run", sc.to_str().unwrap(), "--shard", &shard, "--out", out.to_str().unwrap(), "--quiet"];
            args.extend_from_slice(extra);
            let o = emu(&args);
            assert!(o.status.success(), "{}", stderr(&o));
            out
        })
        .collect()
}

fn merge(out: &Path, dirs: &[PathBuf]) -> std::process::Output {
    let mut args = vec!["merge".to_string(), out.to_str().unwrap().to_string()];
    args.extend(dirs.iter().map(|d| d.to_str().unwrap().to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    emu(&refs)
}

#[test]
fn merged_shards_are_byte_identical_to_one_run() {
    let tmp = tempfile::tempdir().unwrap();
    let sc = write(tmp.path(), "s.toml", SWEEP);
    let one = tmp.path().join("one");
    run_ok(&sc, &one, &["--replications", "3", "--quiet"]);
    let s = shards(&sc, tmp.path(), 5, &["--replications", "3"]);
    // Job j is shard j mod 5's: 12 jobs give 3, 3, 2, 2, 2.
    let m = std::fs::read_to_string(s[1].join("manifest.toml")).unwrap();
    assert!(m.contains("jobs = [1, 6, 11]") && m.contains("jobs_total = 12") && m.contains("shards = 5"), "{m}");
    let merged = tmp.path().join("merged");
    // The order shards are named in does not matter.
    let order = [s[3].clone(), s[0].clone(), s[4].clone(), s[2].clone(), s[1].clone()];
    let o = merge(&merged, &order);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same_tree(&one, &merged);
    // A scenario with manifests: run.toml and manifests/ come along.
    let paths = root().join("workloads/seed/paths.toml");
    // (The report's page names its directory: both are written to one path.)
    let merged = tmp.path().join("paths-results");
    run_ok(&paths, &merged, &["--quiet", "--plot"]);
    let one = tmp.path().join("paths-one");
    std::fs::rename(&merged, &one).unwrap();
    let dir = tmp.path().join("paths");
    std::fs::create_dir(&dir).unwrap();
    let s = shards(&paths, &dir, 2, &[]);
    let mut args = vec!["merge", merged.to_str().unwrap(), "--plot"];
    args.extend(s.iter().map(|d| d.to_str().unwrap()));
    let o = emu(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(merged.join("manifests").is_dir() && merged.join("index.html").is_file());
    // The report too: drawn from the same tables.
    assert_same_tree(&one, &merged);
}

#[test]
fn merge_refuses_shards_that_are_not_one_run() {
    let tmp = tempfile::tempdir().unwrap();
    let sc = write(tmp.path(), "s.toml", SWEEP);
    let s = shards(&sc, tmp.path(), 3, &[]);
    let refused = |dirs: &[PathBuf], needles: &[&str]| {
        let o = merge(&tmp.path().join("out"), dirs);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        for n in needles {
            assert!(stderr(&o).contains(n), "`{n}` not in: {}", stderr(&o));
        }
        assert!(!tmp.path().join("out").exists(), "nothing written");
    };
    // Missing: shard 1 holds jobs 1.
    refused(&[s[0].clone(), s[2].clone()], &["1 of 4 jobs are in no shard given: 1", "shards of 3"]);
    // Given twice.
    refused(&[s[0].clone(), s[1].clone(), s[1].clone(), s[2].clone()], &["job 1 is also in", "s1"]);
    // Another scenario: another seed.
    let other = tmp.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let o = shards(&sc, &other, 3, &["--seed", "9"]);
    refused(&[s[0].clone(), o[1].clone(), s[2].clone()], &["a shard of another scenario", "other/s1"]);
    // Another version of emu.
    let m = s[2].join("manifest.toml");
    let text = std::fs::read_to_string(&m).unwrap();
    std::fs::write(&m, text.replace("emu_version = \"", "emu_version = \"9.")).unwrap();
    refused(&s, &["s2: written by emu 9.", "merge shards with the emu that ran them"]);
    std::fs::write(&m, text).unwrap();
    // A run.toml edited after the run.
    let r = s[0].join("run.toml");
    let run = std::fs::read_to_string(&r).unwrap();
    std::fs::write(&r, run.replace("seed = 5", "seed = 6")).unwrap();
    refused(&s, &["s0: run.toml or manifests/ changed"]);
    std::fs::write(&r, run).unwrap();
    // Not a shard at all.
    let results = tmp.path().join("results");
    run_ok(&sc, &results, &["--quiet"]);
    refused(&[results], &["not a shard directory"]);
    assert!(merge(&tmp.path().join("out"), &s).status.success());
}

#[test]
fn shard_auto_reads_slurm_s_and_kubernetes_environment() {
    let tmp = tempfile::tempdir().unwrap();
    let sc = write(tmp.path(), "s.toml", SWEEP);
    let run = |env: &[(&str, &str)], extra: &[&str]| {
        let out = tmp.path().join("auto");
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_emu"));
        c.args(["run", sc.to_str().unwrap(), "--shard", "auto", "--out", out.to_str().unwrap(), "--quiet"]).args(extra);
        for v in ["SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN", "JOB_COMPLETION_INDEX"] {
            c.env_remove(v);
        }
        c.envs(env.iter().copied());
        let o = c.output().unwrap();
        let manifest = std::fs::read_to_string(out.join("manifest.toml")).unwrap_or_default();
        let _ = std::fs::remove_dir_all(&out);
        (o, manifest)
    };
    let (o, m) =
        run(&[("SLURM_ARRAY_TASK_ID", "3"), ("SLURM_ARRAY_TASK_COUNT", "2"), ("SLURM_ARRAY_TASK_MIN", "2")], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(m.contains("shards = 2\nshard = 1\n") && m.contains("jobs = [1, 3]"), "{m}");
    let (o, m) = run(&[("JOB_COMPLETION_INDEX", "2")], &["--shard-count", "4"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(m.contains("shards = 4\nshard = 2\n") && m.contains("jobs = [2]"), "{m}");
    let (o, _) = run(&[("JOB_COMPLETION_INDEX", "2")], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("EMU_SHARD_COUNT"), "{}", stderr(&o));
    let (o, _) = run(&[("SLURM_ARRAY_TASK_ID", "3")], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("SLURM_ARRAY_TASK_COUNT is not"), "{}", stderr(&o));
    let (o, _) = run(&[], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("neither SLURM_ARRAY_TASK_ID"), "{}", stderr(&o));
}

/// The shipped Indexed Job: its fields make it one, and its shard and
/// merge commands, run here as the pods would run them, give one run's
/// results.
#[test]
fn the_shipped_indexed_job_runs_shards_that_merge_to_one_run() {
    let text = std::fs::read_to_string(root().join("deploy/kubernetes/sweep-job.yaml")).unwrap();
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).unwrap();
    let (sweep, merge_job) = (&docs[0], &docs[1]);
    assert_eq!((sweep["kind"].as_str(), sweep["apiVersion"].as_str()), (Some("Job"), Some("batch/v1")));
    let spec = &sweep["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    let n = spec["completions"].as_u64().unwrap();
    assert_eq!(spec["parallelism"].as_u64(), Some(n));
    assert_eq!(spec["template"]["spec"]["restartPolicy"], "Never");
    let args: Vec<String> = spec["template"]["spec"]["containers"][0]["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let count = args.iter().position(|a| a == "--shard-count").map(|i| args[i + 1].clone()).unwrap();
    assert_eq!(count, n.to_string(), "--shard-count matches completions");
    let merge_env = &merge_job["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(merge_env["env"][0]["value"].as_str(), Some(n.to_string().as_str()));
    // Run the pods' commands here: the ConfigMap and the volume are
    // directories, `$(JOB_COMPLETION_INDEX)` what the kubelet expands.
    let tmp = tempfile::tempdir().unwrap();
    let at = |p: &str| {
        p.replace("/scenario/", &format!("{}/scenario/", tmp.path().display()))
            .replace("/results/", &format!("{}/results/", tmp.path().display()))
    };
    std::fs::create_dir(tmp.path().join("scenario")).unwrap();
    write(&tmp.path().join("scenario"), "scenario.toml", SWEEP);
    assert_eq!(args[0], "emu");
    for k in 0..n {
        let argv: Vec<String> =
            args[1..].iter().map(|a| at(&a.replace("$(JOB_COMPLETION_INDEX)", &k.to_string()))).collect();
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_emu"))
            .args(&argv)
            .env("JOB_COMPLETION_INDEX", k.to_string())
            .env_remove("SLURM_ARRAY_TASK_ID")
            .output()
            .unwrap();
        assert!(o.status.success(), "{argv:?}: {}", stderr(&o));
    }
    let script = merge_env["command"][2].as_str().unwrap();
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_emu")).parent().unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let o = std::process::Command::new("sh")
        .args(["-c", &at(script)])
        .env("SHARDS", n.to_string())
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let one = tmp.path().join("one");
    run_ok(&tmp.path().join("scenario/scenario.toml"), &one, &["--quiet"]);
    assert_same_tree(&one, &tmp.path().join("results/merged"));
}

/// Replications give each point's mean and 95% confidence interval
/// (Student's t, 4 degrees of freedom for 5 replications) in summary.csv.
#[test]
fn replications_give_each_point_a_mean_and_a_confidence_interval() {
    let (_t, out) = run_text(SWEEP, &["--replications", "5", "--quiet"]);
    let s = csv(&out.join("summary.csv"));
    assert_eq!(s.len(), 4 * 5);
    for point in s.chunks(5) {
        let p50: Vec<f64> = point.iter().map(|r| f(r, "latency_p50_us")).collect();
        let mean = p50.iter().sum::<f64>() / 5.0;
        let sd = (p50.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / 4.0).sqrt();
        for r in point {
            assert_eq!(r["proxy.mode"], point[0]["proxy.mode"]);
            assert!((f(r, "latency_p50_us_mean") - mean).abs() < 0.001, "{r:?}");
            assert!((f(r, "latency_p50_us_ci95") - 2.776 * sd / 5f64.sqrt()).abs() < 0.001, "{r:?}");
            assert!(f(r, "latency_p50_us_ci95") > 0.0 && f(r, "throughput_rps_ci95") > 0.0, "{r:?}");
        }
    }
    // Without replications there is nothing to summarise.
    let (_t, out) = run_text(SWEEP, &["--quiet"]);
    let s = csv(&out.join("summary.csv"));
    assert!(!s[0].contains_key("latency_p50_us_mean"));
}

/// `--resume`: a run killed after some jobs keeps them beside its output;
/// the same command again runs only the others, and the results are those
/// of a run never interrupted.
#[test]
fn a_resumed_run_skips_the_jobs_it_kept_and_writes_the_same_results() {
    let tmp = tempfile::tempdir().unwrap();
    // Six jobs of about a quarter second each, run one at a time.
    let text = SWEEP
        .replace("\"proxy.mode\" = [\"iptables\", \"ipvs\"]\n", "")
        .replace("\"flows[0].rate\" = [500, 2000]", "\"flows[0].rate\" = [1000, 2000, 3000, 4000, 5000, 6000]")
        .replace("requests = 300", "requests = 60000");
    let sc = write(tmp.path(), "s.toml", &text);
    let one = tmp.path().join("one");
    run_ok(&sc, &one, &["--quiet"]);
    let out = tmp.path().join("res");
    let store = tmp.path().join("res.jobs");
    let args = ["run", sc.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet", "--threads", "1", "--resume"];
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_emu"))
        .args(args)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while !store.join("job-1").exists() {
        assert!(start.elapsed().as_secs() < 120, "no job kept");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!out.exists(), "killed before its results");
    let kept = std::fs::read_dir(&store)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("job-"))
        .count();
    assert!((2..6).contains(&kept), "{kept} jobs kept");
    let o = emu(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains(&format!("{kept} of 6 jobs resumed")), "{}", stderr(&o));
    assert!(!store.exists(), "the store goes once the results are written");
    assert_same_tree(&one, &out);
    // A store of another scenario is not used.
    std::fs::create_dir(&store).unwrap();
    std::fs::write(store.join("foreign.txt"), "x").unwrap();
    let o = emu(&args);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("is not a job store of emu's"), "{}", stderr(&o));
    assert!(store.join("foreign.txt").exists(), "emu removes nothing it did not write");
}
