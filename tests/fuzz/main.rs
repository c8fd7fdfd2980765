//! A deterministic, bounded fuzz pass over the scenario loader and small
//! runs, in `cargo test`: mutated copies of the shipped workloads (and of
//! the manifests they load), from a fixed seed. Every case must load
//! without panicking (`emu validate`, run on every 50th, exits 0 or 2 as
//! the in-process load says), every refusal
//! must name the file, and memory must stay bounded; cases small enough
//! are also run, and must not panic.
//!
//! `EMU_FUZZ_CASES` sets the number of cases (default 2,000) and
//! `EMU_FUZZ_SEED` the seed (default 1). Failing inputs are written to
//! `target/fuzz-failures/` to be replayed with `emu validate` or `emu run`.
//! Long, coverage-guided runs use cargo-fuzz: see `fuzz/README.md`.

mod mutate;

use std::alloc::{GlobalAlloc, Layout, System};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use emu::scenario::{self, limits};
use emu_engine::rng::{Domain, Stream};

/// Counts live heap bytes and their peak, to bound each case's memory.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = LIVE.fetch_add(l.size(), Ordering::Relaxed) + l.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Most heap one case may use beyond what was live before it [bytes].
const MAX_CASE_BYTES: usize = 1 << 30;

/// Loaded cases are also run, each flow cut to this many requests (and
/// one simulated second), when the runs are at most [`RUN_EVENTS`] events.
const RUN_REQUESTS: u64 = 50;

/// Cases with at most this many estimated events (after the cut) are run.
const RUN_EVENTS: u64 = 200_000;

/// The corpus: shipped workloads that load in milliseconds, with the
/// manifests beside them.
const CORPUS: [&str; 11] = [
    "workloads/seed/paths.toml",
    "workloads/seed/container-to-container.toml",
    "workloads/seed/pod-to-pod.toml",
    "workloads/seed/pod-to-service.toml",
    "workloads/seed/internet-to-service.toml",
    "workloads/services/affinity.toml",
    "workloads/services/external-traffic-policy.toml",
    "workloads/services/ingress.toml",
    "workloads/services/loadbalancer.toml",
    "workloads/validation/daocloud-rtt.toml",
    "workloads/nodeport-throughput.toml",
];

const MANIFESTS: [&str; 3] = ["mypod.yaml", "myservice.yaml", "myweb.yaml"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// What went wrong with one case.
struct Failure {
    case: u64,
    what: String,
    scenario: Vec<u8>,
    manifest: Option<(String, Vec<u8>)>,
}

#[test]
fn mutated_workloads_never_panic_and_refusals_name_the_file() {
    let cases = env_u64("EMU_FUZZ_CASES", 2_000);
    let seed = env_u64("EMU_FUZZ_SEED", 1);
    let originals: Vec<Vec<u8>> = CORPUS.iter().map(|p| std::fs::read(root().join(p)).unwrap()).collect();
    let manifests: Vec<Vec<u8>> =
        MANIFESTS.iter().map(|m| std::fs::read(root().join("workloads/seed").join(m)).unwrap()).collect();
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Stream::new(seed, Domain(0x4655_5a5a), 0);
    let mut failures = Vec::new();
    let (mut refused, mut loaded, mut ran) = (0u64, 0u64, 0u64);
    // Panics are caught and reported per case; keep the default hook quiet.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for case in 0..cases {
        let pick = rng.below(CORPUS.len() as u64) as usize;
        // One case in five mutates a manifest instead of the scenario.
        let mut scenario_text = originals[pick].clone();
        let mut manifest = None;
        if rng.below(5) == 0 {
            let m = rng.below(MANIFESTS.len() as u64) as usize;
            let mut text = manifests[m].clone();
            mutate::mutate(&mut text, &mut rng, true);
            manifest = Some((MANIFESTS[m].to_string(), text));
            // paths.toml loads all three manifests.
            scenario_text = originals[0].clone();
        } else {
            mutate::mutate(&mut scenario_text, &mut rng, false);
        }
        for (m, text) in MANIFESTS.iter().zip(&manifests) {
            std::fs::write(dir.path().join(m), text).unwrap();
        }
        if let Some((name, text)) = &manifest {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let path = dir.path().join("case.toml");
        std::fs::write(&path, &scenario_text).unwrap();
        let fail = |what: String| Failure { case, what, scenario: scenario_text.clone(), manifest: manifest.clone() };
        let before = LIVE.load(Ordering::Relaxed);
        PEAK.store(before, Ordering::Relaxed);
        let outcome = catch_unwind(AssertUnwindSafe(|| scenario::load(&path, None, None, 1)));
        let peak = PEAK.load(Ordering::Relaxed) - before;
        // Every 50th case also through the binary: `emu validate` exits 0
        // or 2, as the in-process load said.
        if case % 50 == 0 {
            let o = std::process::Command::new(env!("CARGO_BIN_EXE_emu")).arg("validate").arg(&path).output().unwrap();
            let want = match &outcome {
                Ok(Ok(_)) => Some(0),
                Ok(Err(_)) => Some(2),
                Err(_) => None,
            };
            if o.status.code() != want {
                failures.push(fail(format!("emu validate exited {:?}, expected {want:?}", o.status.code())));
            }
        }
        if peak > MAX_CASE_BYTES {
            failures.push(fail(format!("loading used {peak} bytes")));
        }
        match outcome {
            Err(p) => failures.push(fail(format!("load panicked: {}", panic_text(&p)))),
            Ok(Err(msg)) => {
                refused += 1;
                let names_file = msg.contains("case.toml") || MANIFESTS.iter().any(|m| msg.contains(m));
                if !names_file {
                    failures.push(fail(format!("refusal names no file: {msg}")));
                }
            }
            Ok(Ok(l)) => {
                loaded += 1;
                let mut l = l;
                for p in &mut l.points {
                    for f in &mut p.prepared.flows {
                        f.requests = Some(f.requests.unwrap_or(RUN_REQUESTS).min(RUN_REQUESTS));
                        f.duration_ns = f.duration_ns.map(|d| d.min(1_000_000_000));
                    }
                }
                let points: Vec<&scenario::Prepared> = l.points.iter().map(|p| &p.prepared).collect();
                let e = limits::estimate(&points, 1, l.base.replications, 1);
                if e.events <= RUN_EVENTS && e.runs <= 4 {
                    ran += 1;
                    if let Err(what) = run_all(&points) {
                        failures.push(fail(what));
                    }
                }
            }
        }
    }
    std::panic::set_hook(hook);
    save(&failures);
    eprintln!("fuzz: {cases} cases (seed {seed}): {refused} refused, {loaded} loaded, {ran} run");
    assert!(refused > cases / 10 && loaded > cases / 10, "the mutations should both break and keep inputs");
    assert!(
        failures.is_empty(),
        "{} of {cases} cases failed; first: case {}: {}",
        failures.len(),
        failures[0].case,
        failures[0].what
    );
}

/// Runs every point in-process, catching panics.
fn run_all(points: &[&scenario::Prepared]) -> Result<(), String> {
    for p in points {
        let r = catch_unwind(AssertUnwindSafe(|| {
            emu_models::world::simulate(&p.cluster, p.params.clone(), p.flows.clone(), p.servers.clone())
        }));
        match r {
            Err(panic) => return Err(format!("run panicked: {}", panic_text(&panic))),
            Ok(Err(e)) => return Err(format!("run refused what load accepted: {e}")),
            Ok(Ok(_)) => {}
        }
    }
    Ok(())
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default()
}

/// Writes failing inputs to target/fuzz-failures/CASE/.
fn save(failures: &[Failure]) {
    let base = root().join("target/fuzz-failures");
    for f in failures.iter().take(20) {
        let d = base.join(f.case.to_string());
        let _ = std::fs::create_dir_all(&d);
        let _ = std::fs::write(d.join("case.toml"), &f.scenario);
        for m in MANIFESTS {
            let _ = std::fs::copy(root().join("workloads/seed").join(m), d.join(m));
        }
        if let Some((name, text)) = &f.manifest {
            let _ = std::fs::write(d.join(name), text);
        }
        let _ = std::fs::write(d.join("why.txt"), &f.what);
        eprintln!("fuzz failure, case {}: {} (input in {})", f.case, f.what, d.display());
    }
}
