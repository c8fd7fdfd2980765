//! `emu`: run Kubernetes networking scenarios and write CSV results.

use emu::{outdir, report, scenario};

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc's malloc: building a million-pod cluster is
/// millions of small allocations, on two threads at once, and glibc's
/// second arena took 15% of `emu validate workloads/scale-65k.toml` in
/// `malloc` alone (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EXAMPLE: &str = "Example scenario (docs/scenario.md documents every key):

  seed = 1
  [cluster]
  nodes = 2
  [[pods]]
  name = \"client\"
  node = \"node-0\"
  [[pods]]
  name = \"web\"
  replicas = 3
  labels = { app = \"web\" }
  ports = [8080]
  [[services]]
  name = \"web\"
  selector = { app = \"web\" }
  ports = [{ port = 80, target_port = 8080 }]
  [[flows]]
  name = \"client-to-web\"
  from = \"client\"
  to = \"http://web:80\"
  rate = 1000          # requests per second, open loop
  requests = 10000

Run it with `emu run scenario.toml`; results land in results/scenario/.";

#[derive(Parser)]
#[command(name = "emu", version, about = "A deterministic emulator of Kubernetes cluster networking", after_help = EXAMPLE)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario and write CSV results.
    Run {
        /// The scenario file (TOML).
        file: PathBuf,
        /// Output directory [default: results/<scenario file stem>]. An
        /// existing one is replaced only if emu wrote it.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace the output directory even if emu did not write it (never
        /// a file, a device or a symbolic link).
        #[arg(long)]
        force: bool,
        /// Override the scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Run at most this many sweep points at once [default: one per core].
        /// Results are byte-identical whatever the number.
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Run every point this many times, replication r with seed + r; adds
        /// a `replication` column to every CSV when above 1.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        replications: Option<u32>,
        /// Do not print the summary table on stdout.
        #[arg(long)]
        quiet: bool,
        /// Also write the report: SVG charts in plots/ and index.html.
        #[arg(long)]
        plot: bool,
        /// Run only shard K (0-based) of N of the run's jobs (a job: one
        /// sweep point and replication; job j is shard j mod N's) and write
        /// a shard directory for `emu merge` [default --out:
        /// results/<stem>.shard-K-of-N]. `auto`: K and N from a Slurm array
        /// (SLURM_ARRAY_TASK_ID, _COUNT, _MIN) or a Kubernetes Indexed Job
        /// (JOB_COMPLETION_INDEX, with N from --shard-count or
        /// EMU_SHARD_COUNT).
        #[arg(long, value_name = "K/N|auto")]
        shard: Option<String>,
        /// The number of shards, for `--shard auto` in a Kubernetes Indexed
        /// Job (which does not export its completions).
        #[arg(long, value_name = "N")]
        shard_count: Option<u32>,
        /// Make the run resumable: keep each finished job in OUT.jobs/ until
        /// the results are written, and skip the jobs kept there by an
        /// interrupted run of the same scenario.
        #[arg(long)]
        resume: bool,
    },
    /// Assemble the shard directories of `emu run --shard` into the
    /// results `emu run` writes for the whole run, byte for byte.
    Merge {
        /// The results directory to write (replaced only if emu wrote it).
        out: PathBuf,
        /// Every shard directory of the run.
        #[arg(required = true)]
        shards: Vec<PathBuf>,
        /// Replace OUT even if emu did not write it.
        #[arg(long)]
        force: bool,
        /// Also write the report: SVG charts in plots/ and index.html.
        #[arg(long)]
        plot: bool,
    },
    /// Write the report of a results directory: SVG charts in DIR/plots/
    /// and DIR/index.html.
    Plot {
        /// A results directory written by `emu run`.
        dir: PathBuf,
    },
    /// Print who can reach whom under the scenario's NetworkPolicies (and
    /// write reach.csv).
    Reach {
        /// The scenario file (TOML).
        file: PathBuf,
        /// Only this destination port [default: every port the pods listen on].
        #[arg(long)]
        port: Option<u16>,
        /// Only this protocol: TCP, UDP or SCTP [default: TCP with --port,
        /// every protocol otherwise].
        #[arg(long)]
        protocol: Option<String>,
        /// Only the pods of this namespace [default: every pod the scenario
        /// declares].
        #[arg(long)]
        namespace: Option<String>,
        /// Output directory for reach.csv [default: results/<scenario file
        /// stem>-reach]. An existing one is replaced only if emu wrote it.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace the output directory even if emu did not write it.
        #[arg(long)]
        force: bool,
    },
    /// Print what kube-proxy programs on a node, as its real tools print it
    /// (`iptables-save -t nat`, `nft list table ip kube-proxy`, `ipvsadm -Ln`).
    Rules {
        /// The scenario file (TOML).
        file: PathBuf,
        /// The node (`node-0` ...).
        #[arg(long)]
        node: String,
        /// The proxy mode [default: the scenario's].
        #[arg(long)]
        mode: Option<String>,
        /// Print the node's interfaces and routes instead (`ip -brief
        /// address`, `ip route`).
        #[arg(long)]
        links: bool,
    },
    /// Follow one request hop by hop: interfaces, addresses, NAT,
    /// conntrack, DNS, queues and servers, with each step's time.
    Trace {
        /// The scenario file (TOML).
        file: PathBuf,
        /// The flow whose request is traced.
        #[arg(long)]
        flow: String,
        /// Which of the flow's requests, counting from 1 in the order issued.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
        request: u64,
        /// `text` or `json`.
        #[arg(long, default_value = "text")]
        format: String,
        /// Override the scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Check a scenario without running it.
    Validate {
        /// The scenario file (TOML).
        file: PathBuf,
    },
    /// Benchmarks of the engine itself.
    #[command(subcommand)]
    Bench(Bench),
}

#[derive(Subcommand)]
enum Bench {
    /// The PHOLD benchmark: prints `events=<handled> secs=<wall> rate=<Mev/s> checksum=<hex>`.
    Phold {
        /// Logical processes.
        #[arg(long, default_value_t = 1000)]
        lps: u32,
        /// Initial events per LP, at time 0.
        #[arg(long, default_value_t = 1)]
        init: u32,
        /// Events handled before scheduling stops and the queue drains.
        #[arg(long, default_value_t = 10_000_000)]
        events: u64,
        /// Master seed of the LPs' streams.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Also run the same PHOLD on a bare `std` `BinaryHeap<u128>` loop,
        /// right after, and print both rates and the engine's speed-up.
        #[arg(long)]
        baseline_heap: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Bench(Bench::Phold { lps, init, events, seed, baseline_heap }) => {
            if lps == 0 {
                eprintln!("error: --lps must be at least 1");
                return ExitCode::from(2);
            }
            if lps as u64 * init as u64 > MAX_PHOLD_PENDING {
                eprintln!(
                    "error: --lps {lps} x --init {init} = {} pending events, more than the {MAX_PHOLD_PENDING} \
                     the benchmark allows (about 50 bytes each, queue entry and stream)",
                    lps as u64 * init as u64
                );
                return ExitCode::from(2);
            }
            let wall = std::time::Instant::now();
            let r = emu_engine::phold::phold(lps, init, events, seed);
            let secs = wall.elapsed().as_secs_f64();
            println!(
                "events={} secs={secs:.3} rate={:.2} checksum={:016x}",
                r.handled,
                r.handled as f64 / secs / 1e6,
                r.checksum
            );
            if baseline_heap {
                if lps >= 1 << 24 {
                    eprintln!("error: --baseline-heap packs the LP in 24 bits: at most {} LPs", (1 << 24) - 1);
                    return ExitCode::from(2);
                }
                let wall = std::time::Instant::now();
                let b = emu_engine::phold::phold_baseline_heap(lps, init, events, seed);
                let base = wall.elapsed().as_secs_f64();
                assert_eq!(b, r, "the baseline handles the same events in the same order");
                println!(
                    "baseline-heap events={} secs={base:.3} rate={:.2} checksum={:016x} engine/baseline={:.3}",
                    b.handled,
                    b.handled as f64 / base / 1e6,
                    b.checksum,
                    base / secs
                );
            }
            ExitCode::SUCCESS
        }
        Command::Reach { file, port, protocol, namespace, out, force } => {
            reach(&file, port, protocol, namespace, out, force)
        }
        Command::Rules { file, node, mode, links } => rules(&file, &node, mode.as_deref(), links),
        Command::Trace { file, flow, request, format, seed } => trace(&file, &flow, request, &format, seed),
        Command::Plot { dir } => {
            outdir::install_signal_cleanup();
            let mut n = 0;
            match outdir::install_report(&dir, |tmp| {
                n = emu::plot::write(&dir, tmp, &dir)?.len();
                Ok(())
            }) {
                Ok(()) => {
                    eprintln!(
                        "wrote {n} charts to {} and {}",
                        dir.join("plots").display(),
                        dir.join("index.html").display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Validate { file } => match scenario::load(&file, None, None, cores()) {
            Ok(loaded) => {
                warn(&loaded);
                let p = &loaded.points[0].prepared;
                println!(
                    "{}: ok: {} point(s); {} nodes, {} pods, {} services, {} flows",
                    file.display(),
                    loaded.points.len(),
                    p.cluster.nodes.len(),
                    p.cluster.pods.len(),
                    p.cluster.services.len(),
                    p.flows.len()
                );
                exit_without_freeing(loaded);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Merge { out, shards, force, plot } => merge(&out, &shards, force, plot),
        Command::Run { file, out, force, seed, threads, replications, quiet, plot, shard, shard_count, resume } => {
            let shard = match shard
                .as_deref()
                .map(|s| report::shard::Shard::parse(s, shard_count, &|k: &str| std::env::var(k).ok()))
            {
                None if shard_count.is_some() => {
                    eprintln!("error: --shard-count needs --shard");
                    return ExitCode::from(2);
                }
                None => None,
                Some(Ok(s)) => Some(s),
                Some(Err(e)) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            if shard.is_some() && plot {
                eprintln!("warning: --plot with --shard: a shard has no report; `emu merge --plot` draws the run's");
            }
            let threads = cap_threads(threads);
            let pool = if threads == 0 { cores() } else { threads as u64 };
            let loaded = match scenario::load(&file, seed, replications, pool) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            warn(&loaded);
            let out = out.unwrap_or_else(|| {
                let stem = file.file_stem().map_or("scenario".into(), |s| s.to_string_lossy().into_owned());
                match shard {
                    Some(s) => PathBuf::from("results").join(format!("{stem}.shard-{}-of-{}", s.index, s.count)),
                    None => PathBuf::from("results").join(stem),
                }
            });
            if let Err(e) = outdir::check(&out, force) {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
            announce(&loaded, pool);
            outdir::install_signal_cleanup();
            let replications = loaded.base.replications;
            let options = report::RunOptions { force, threads, replications, plot, shard, resume };
            let result = report::run_and_write(&loaded, &out, options);
            exit_without_freeing(loaded);
            match result {
                Ok(done) => {
                    if !quiet {
                        print!("{}", done.table);
                    }
                    eprintln!("{}", done.line);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

/// Leaves the scenario's clusters to the operating system: the process is
/// about to exit, and freeing a million pods one allocation at a time took
/// 0.7 s of `emu validate workloads/scale-65k.toml`'s 3.9 s.
fn exit_without_freeing(loaded: scenario::Loaded) {
    std::mem::forget(loaded);
}

/// Loads `file` for a look at its cluster (`emu reach`, `emu rules`: no
/// flow needed), warns, and says which sweep point `verb` shows.
fn inspect(file: &std::path::Path, verb: &str) -> Result<scenario::Loaded, ExitCode> {
    let loaded = scenario::load_cluster(file).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })?;
    warn(&loaded);
    if loaded.points.len() > 1 {
        eprintln!("note: {} sweep points: {verb} shows the first", loaded.points.len());
    }
    Ok(loaded)
}

/// `emu trace`: runs the scenario's first sweep point until the request
/// asked for ends, and prints its steps.
fn trace(file: &std::path::Path, flow: &str, request: u64, format: &str, seed: Option<u64>) -> ExitCode {
    if !matches!(format, "text" | "json") {
        eprintln!("error: --format {format}: not text or json");
        return ExitCode::from(2);
    }
    let loaded = match scenario::load(file, seed, None, 1) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    warn(&loaded);
    if loaded.points.len() > 1 {
        eprintln!("note: {} sweep points: trace follows the first", loaded.points.len());
    }
    let p = &loaded.points[0].prepared;
    let Some(index) = p.flows.iter().position(|f| f.name == flow) else {
        let names: Vec<&str> = p.flows.iter().map(|f| f.name.as_str()).collect();
        eprintln!("error: --flow {flow}: no such flow in {} (flows: {})", file.display(), names.join(", "));
        return ExitCode::from(2);
    };
    let want = emu_models::world::TraceRequest { flow: index as u32, nth: request };
    match emu_models::world::simulate_traced(&p.cluster, p.params.clone(), p.flows.clone(), p.servers.clone(), want) {
        Ok((_, t)) => {
            if format == "json" {
                print!("{}", emu::trace::json(&t));
            } else {
                print!("{}", emu::trace::text(&t, &file.display().to_string()));
            }
            if t.outcome == emu_models::world::Outcome::NotIssued {
                eprintln!("error: flow `{flow}` issued fewer than {request} requests");
                return ExitCode::from(2);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// `emu rules`: prints a node's kube-proxy rules.
fn rules(file: &std::path::Path, node: &str, mode: Option<&str>, links: bool) -> ExitCode {
    use emu_models::proxy::{iptables::Iptables, iptables_save, nft_list, Mode};
    let loaded = match inspect(file, "rules") {
        Ok(l) => l,
        Err(code) => return code,
    };
    let p = &loaded.points[0].prepared;
    let cl = &p.cluster;
    let Some(n) = cl.node_by_name(node) else {
        eprintln!("error: --node {node}: no such node (node-0 to node-{})", cl.nodes.len() - 1);
        return ExitCode::from(2);
    };
    if links {
        use emu_models::datapath::links;
        let cni = p.params.datapath.cni;
        print!("$ ip -brief address\n{}$ ip route\n{}", links::addresses(cl, cni, n), links::routes(cl, cni, n));
        return ExitCode::SUCCESS;
    }
    let mode = match mode {
        None => p.params.proxy.mode,
        Some("iptables") => Mode::Iptables,
        Some("ipvs") => Mode::Ipvs,
        Some("nftables") => Mode::Nftables,
        Some(m) => {
            eprintln!("error: --mode {m}: not iptables, ipvs or nftables");
            return ExitCode::from(2);
        }
    };
    match mode {
        Mode::Iptables => {
            let ipt = Iptables::new(cl, p.params.proxy.iptables.clone(), p.params.seed);
            print!("{}", iptables_save::render(cl, &ipt, n));
        }
        Mode::Nftables => print!("{}", nft_list::render_nft(cl, n)),
        Mode::Ipvs => print!("{}", nft_list::render_ipvs(cl, n, p.params.proxy.ipvs.scheduler)),
        Mode::Ebpf => {
            eprintln!("error: the scenario's proxy mode is ebpf, which programs BPF maps, not rules: give --mode");
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}

/// `emu reach`: prints the matrices, writes reach.csv (and run.toml).
fn reach(
    file: &std::path::Path,
    port: Option<u16>,
    protocol: Option<String>,
    namespace: Option<String>,
    out: Option<PathBuf>,
    force: bool,
) -> ExitCode {
    use emu_models::cluster::Protocol;
    let protocol = match protocol.as_deref().map(str::to_ascii_uppercase).as_deref() {
        None => None,
        Some("TCP") => Some(Protocol::Tcp),
        Some("UDP") => Some(Protocol::Udp),
        Some("SCTP") => Some(Protocol::Sctp),
        Some(other) => {
            eprintln!("error: --protocol {other}: not TCP, UDP or SCTP");
            return ExitCode::from(2);
        }
    };
    if port == Some(0) {
        eprintln!("error: --port 0: ports are 1-65535");
        return ExitCode::from(2);
    }
    let loaded = match inspect(file, "reach") {
        Ok(l) => l,
        Err(code) => return code,
    };
    let cl = &loaded.points[0].prepared.cluster;
    let r = match emu::reach::reach(cl, &emu::reach::Options { port, protocol, namespace }) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let out = out.unwrap_or_else(|| {
        let stem = file.file_stem().map_or("scenario".into(), |s| s.to_string_lossy().into_owned());
        PathBuf::from("results").join(format!("{stem}-reach"))
    });
    if let Err(e) = outdir::check(&out, force) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    print!("{}", emu::reach::render(cl, &r));
    let written = outdir::TempDir::beside(&out).and_then(|tmp| {
        emu::reach::write_csv(cl, &r, tmp.path())?;
        report::write_run_toml(&loaded, tmp.path())?;
        tmp.commit(&out, force)
    });
    match written {
        Ok(()) => {
            eprintln!("wrote {}", out.join("reach.csv").display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// Most events PHOLD may hold pending at once (`--lps` x `--init`): about
/// 5 GB at 16 bytes of queue an event and 32 of random stream an LP.
const MAX_PHOLD_PENDING: u64 = 100_000_000;

/// The machine's cores.
fn cores() -> u64 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u64)
}

/// Says up front what a long run will take (more than a minute, about).
fn announce(loaded: &scenario::Loaded, threads: u64) {
    let points: Vec<&scenario::Prepared> = loaded.points.iter().map(|p| &p.prepared).collect();
    let e = scenario::limits::estimate(&points, 1, loaded.base.replications, threads);
    let secs = e.seconds(threads);
    let busy = threads.clamp(1, e.runs.max(1));
    if secs > 60.0 {
        eprintln!(
            "note: {} run(s), {} requests, about {:.1e} events: about {} on {busy} thread(s), {} of memory (estimates)",
            e.runs,
            e.requests,
            e.events as f64,
            scenario::limits::human_time(secs),
            scenario::limits::bytes(e.memory)
        );
    }
}

/// `--threads` at most the machine's cores (0: one per core); more would
/// only add threads that wait, and thousands fail to start.
fn cap_threads(threads: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads > cores {
        eprintln!("warning: --threads {threads} is more than this machine's {cores} cores: using {cores}");
        cores
    } else {
        threads
    }
}

/// Prints each distinct warning once (sweep points often repeat them).
fn warn(loaded: &scenario::Loaded) {
    let mut seen = std::collections::BTreeSet::new();
    for w in loaded.points.iter().flat_map(|p| &p.prepared.warnings) {
        if seen.insert(w) {
            eprintln!("warning: {w}");
        }
    }
}

/// `emu merge OUT SHARD_DIR...`.
fn merge(out: &std::path::Path, shards: &[PathBuf], force: bool, plot: bool) -> ExitCode {
    if let Err(e) = outdir::check(out, force) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    outdir::install_signal_cleanup();
    match report::shard::merge(out, shards, force, plot) {
        Ok((warnings, line)) => {
            for w in warnings {
                eprintln!("warning: {w}");
            }
            eprintln!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
