//! Criterion benchmarks of the hot paths: the event queue at several
//! depths, PHOLD, random streams, each kube-proxy mode's per-connection
//! decision, a NetworkPolicy check, and a small end-to-end run. Regression comparison:
//! `cargo bench -- --save-baseline main`, then `cargo bench -- --baseline main`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use emu_engine::rng::{Domain, Stream};
use emu_engine::{EventQueue, SimTime};
use emu_models::addr::Ipv4;
use emu_models::cluster::testing;
use emu_models::ids::{NodeId, PodId, SpId};
use emu_models::proxy::{Candidates, Entry, Mode, Proxy, ProxyModel, ProxyParams, Query};
use emu_models::traffic::{Arrivals, Client, Flow, Target};
use emu_models::world::{simulate, Params};

/// The "hold" model: pop the earliest event, push one a random delay later,
/// with `depth` events pending.
fn queue_hold(c: &mut Criterion) {
    let mut g = c.benchmark_group("queue_hold");
    for depth in [100usize, 10_000, 1_000_000] {
        g.throughput(Throughput::Elements(1));
        g.bench_with_input(BenchmarkId::from_parameter(depth), &depth, |b, &depth| {
            let mut rng = Stream::new(1, Domain(0), 0);
            let mut q = EventQueue::with_capacity(depth);
            for i in 0..depth {
                q.push(SimTime(rng.below(1_000_000)), i as u32);
            }
            b.iter(|| {
                let (t, e) = q.pop().unwrap();
                q.push(SimTime(t.0 + 1 + rng.below(1_000_000)), black_box(e));
            });
        });
    }
    g.finish();
}

/// PHOLD (engine/src/phold.rs): 1,000 and 16,000 LPs, 200,000 events, beside
/// the same on a bare `BinaryHeap<u128>` loop.
fn phold(c: &mut Criterion) {
    let mut g = c.benchmark_group("phold");
    g.throughput(Throughput::Elements(200_000));
    g.sample_size(20);
    for lps in [1_000u32, 16_000] {
        g.bench_with_input(BenchmarkId::from_parameter(lps), &lps, |b, &lps| {
            b.iter(|| black_box(emu_engine::phold::phold(lps, 1, 200_000, 1)));
        });
        // The same PHOLD on a bare std BinaryHeap<u128>, measured beside it.
        g.bench_with_input(BenchmarkId::new("bare-heap", lps), &lps, |b, &lps| {
            b.iter(|| black_box(emu_engine::phold::phold_baseline_heap(lps, 1, 200_000, 1)));
        });
    }
    g.finish();
}

fn streams(c: &mut Criterion) {
    let mut rng = Stream::new(1, Domain(0), 0);
    c.bench_function("stream_next_u64", |b| b.iter(|| black_box(rng.next_u64())));
    c.bench_function("stream_below_10", |b| b.iter(|| black_box(rng.below(10))));
}

/// Each proxy mode's per-connection decision at 1,000 and 30,000 Services.
fn proxy_decision(c: &mut Criterion) {
    let mut g = c.benchmark_group("proxy_pick");
    for services in [1_000u32, 30_000] {
        let cluster = testing::services_cluster(4, services, 10);
        for mode in [Mode::Iptables, Mode::Ipvs, Mode::Nftables, Mode::Ebpf] {
            let mut proxy = Proxy::new(&cluster, &ProxyParams { mode, ..Default::default() }, 1);
            let mut rng = Stream::new(1, Domain(0), 0);
            let n = cluster.service_ports.len() as u64;
            g.bench_function(BenchmarkId::new(mode.name(), services), |b| {
                b.iter(|| {
                    let sp = SpId::new(rng.below(n) as u32);
                    let eps = cluster.service_ports[sp.index()].endpoints.len() as u32;
                    let q = Query {
                        node: NodeId::new(rng.below(4) as u32),
                        sp,
                        entry: Entry::ClusterIp,
                        candidates: Candidates::All(eps),
                        client_ip: Ipv4(rng.next_u64() as u32),
                        dest_ip: Ipv4(0x0A60_0002),
                        affinity: false,
                        now_ns: 0,
                        extra: &[],
                        version: 0,
                    };
                    let d = proxy.pick(&cluster, &q, &mut rng).expect("weight-1 endpoints");
                    proxy.closed(q.node, sp, Entry::ClusterIp, d.endpoint, 0);
                    black_box(d)
                });
            });
        }
    }
    g.finish();
}

/// A NetworkPolicy check (`Policies::ingress`) of a first packet to a pod
/// of one of `apps` apps, each with its allow policy, behind a
/// default-deny: what the data path pays per new connection.
fn policy_check(c: &mut Criterion) {
    use emu_models::policy::{LabelSelector, NetworkPolicySpec, Packet, PeerSpec, RuleSpec};
    let mut g = c.benchmark_group("policy_check");
    for apps in [100u32, 10_000] {
        let mut spec = testing::spec(100);
        let labels = |k: &str, v: String| -> emu_models::cluster::Labels { [(k.to_string(), v)].into_iter().collect() };
        let policy = |name: String, sel: LabelSelector, ingress| NetworkPolicySpec {
            origin: Default::default(),
            name,
            namespace: "default".into(),
            pod_selector: sel,
            policy_types: None,
            ingress,
            egress: vec![],
        };
        spec.network_policies.push(policy("default-deny".into(), LabelSelector::default(), vec![]));
        for i in 0..apps {
            spec.pods.push(testing::pods(&format!("app-{i}"), 2, 8080));
            let from = PeerSpec {
                pod_selector: Some(LabelSelector::labels(labels("app", "client".into()))),
                ..Default::default()
            };
            spec.network_policies.push(policy(
                format!("allow-{i}"),
                LabelSelector::labels(labels("app", format!("app-{i}"))),
                vec![RuleSpec { peers: vec![from], ports: vec![] }],
            ));
        }
        spec.pods.push(testing::pods("client", 4, 9000));
        let cl = emu_models::cluster::build(&spec, 1).unwrap();
        let client = cl.pods.iter().position(|p| p.name.starts_with("client")).unwrap();
        let mut rng = Stream::new(1, Domain(0), 0);
        g.bench_function(BenchmarkId::from_parameter(apps), |b| {
            b.iter(|| {
                let to = &cl.pods[rng.below(2 * apps as u64) as usize];
                let from = &cl.pods[client];
                let pkt = Packet {
                    from: Some((from, from.ip)),
                    src: from.ip,
                    to,
                    to_ip: to.ip,
                    to_node: &cl.nodes[to.node.index()],
                    port: 8080,
                    protocol: emu_models::cluster::Protocol::Tcp,
                };
                black_box(cl.policies.ingress(&pkt))
            });
        });
    }
    g.finish();
}

/// 10,000 new connections to a Service with 10 endpoints across 4 nodes,
/// DNS included.
fn end_to_end(c: &mut Criterion) {
    let mut spec = testing::spec(4);
    spec.pods.push(testing::pods("web", 10, 8080));
    spec.pods.push(testing::pods("client", 4, 9000));
    spec.services.push(testing::service("web", "web", 8080));
    let cluster = emu_models::cluster::build(&spec, 1).unwrap();
    let clients: Vec<PodId> = (0..cluster.pods.len())
        .filter(|&p| cluster.pods[p].name.starts_with("client"))
        .map(PodId::from_index)
        .collect();
    let flow = Flow {
        origin: Default::default(),
        name: "bench".into(),
        client: Client::Pods(clients.into()),
        target: Target::Name { name: "web".into(), port: 80 },
        arrivals: Arrivals::Open { rate_per_s: 10_000.0 },
        requests: Some(10_000),
        duration_ns: None,
        start_ns: 0,
        request_bytes: 100,
        response_bytes: 1024,
        keep_alive: false,
        timeout_ns: 10_000_000_000,
        max_connection_age_ns: None,
    };
    let mut g = c.benchmark_group("end_to_end");
    g.throughput(Throughput::Elements(10_000));
    g.sample_size(20);
    g.bench_function("service_10k_requests", |b| {
        b.iter(|| black_box(simulate(&cluster, Params::default(), vec![flow.clone()], vec![]).unwrap().events));
    });
    // The same run with `emu trace`'s recorder attached but following no
    // request (it waits for a request the flow never issues): every hook's
    // test is taken and fails, the most an untraced request pays.
    let idle = emu_models::world::TraceRequest { flow: 0, nth: u64::MAX };
    g.bench_function("service_10k_requests_idle_recorder", |b| {
        b.iter(|| {
            let (r, _) =
                emu_models::world::simulate_traced(&cluster, Params::default(), vec![flow.clone()], vec![], idle)
                    .unwrap();
            black_box(r.events)
        });
    });
    g.finish();
}

criterion_group!(benches, queue_hold, phold, streams, proxy_decision, policy_check, end_to_end);
criterion_main!(benches);
