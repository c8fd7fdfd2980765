//! Bytes per node, pod, Service and endpoint, measured: a counting global
//! allocator gives the heap a cluster (and the run-time state a world adds)
//! holds, at two sizes that differ in one kind of entity only, so the
//! difference over the count is that entity's cost (the slope, not the
//! total). Run with `--nocapture` to see the table docs/performance.md
//! quotes. One test: the counter is process-wide.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use emu_models::cluster::{build, testing, Cluster, ClusterSpec};
use emu_models::traffic::{Arrivals, Client, Flow, Target};
use emu_models::world::Params;
use emu_models::world::World;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// A cluster of `nodes` nodes, `apps` apps of `replicas` pods each behind
/// one Service each, and `clients` client pods.
fn spec(nodes: u32, apps: u32, replicas: u32, clients: u32) -> ClusterSpec {
    let mut s = testing::spec(nodes);
    s.pod_cidr = "10.128.0.0/10".parse().unwrap();
    s.node_ip_cidr = "172.16.0.0/12".parse().unwrap();
    s.node_cidr_mask_size = 26;
    for a in 0..apps {
        s.pods.push(testing::pods(&format!("app-{a}"), replicas, 8080));
        s.services.push(testing::service(&format!("svc-{a}"), &format!("app-{a}"), 8080));
    }
    s.pods.push(testing::pods("client", clients, 9000));
    s
}

/// Heap bytes held by the built cluster, and by a world on it (the
/// run-time state before the first event).
fn bytes(s: &ClusterSpec) -> (f64, f64) {
    let before = LIVE.load(Ordering::Relaxed);
    let cluster: Cluster = build(s, 1).expect("builds");
    let built = LIVE.load(Ordering::Relaxed);
    let client = (0..cluster.pods.len()).find(|&p| cluster.pods[p].name.starts_with("client")).unwrap();
    let flow = Flow {
        origin: Default::default(),
        name: "f".into(),
        client: Client::Pods(vec![emu_models::ids::PodId::from_index(client)].into()),
        target: Target::Name { name: "svc-0".into(), port: 80 },
        arrivals: Arrivals::Closed { clients: 1, think: emu_engine::Dist::Constant(0) },
        requests: Some(1),
        duration_ns: None,
        start_ns: 0,
        request_bytes: 100,
        response_bytes: 1000,
        keep_alive: true,
        timeout_ns: 1_000_000_000,
        max_connection_age_ns: None,
    };
    let world = World::new(&cluster, Params::default(), vec![flow], vec![]).expect("a world");
    let with_world = LIVE.load(Ordering::Relaxed);
    drop(world);
    drop(cluster);
    ((built - before) as f64, (with_world - built) as f64)
}

/// Per-entity bytes: (cluster, run-time) of `b` over `a`, per `n` more.
fn slope(a: &ClusterSpec, b: &ClusterSpec, n: u32) -> (f64, f64) {
    let (ca, wa) = bytes(a);
    let (cb, wb) = bytes(b);
    ((cb - ca) / n as f64, (wb - wa) / n as f64)
}

#[test]
fn bytes_per_node_pod_service_and_endpoint() {
    // Nodes: 1,000 more, nothing else.
    let node = slope(&spec(1_000, 100, 10, 100), &spec(2_000, 100, 10, 100), 1_000);
    // Pods (clients: no Service selects them): 20,000 more.
    let pod = slope(&spec(1_000, 100, 10, 10_000), &spec(1_000, 100, 10, 30_000), 20_000);
    // Services with one endpoint each: 2,000 more Services (and pods).
    let svc1 = slope(&spec(1_000, 1_000, 1, 100), &spec(1_000, 3_000, 1, 100), 2_000);
    let service = (svc1.0 - pod.0, svc1.1 - pod.1);
    // Endpoints: 20 more replicas behind each of 1,000 Services.
    let ep = slope(&spec(1_000, 1_000, 10, 100), &spec(1_000, 1_000, 30, 100), 20_000);
    let endpoint = (ep.0 - pod.0, ep.1 - pod.1);
    let sizes = [
        ("Pod (struct)", std::mem::size_of::<emu_models::cluster::Pod>()),
        ("Node (struct)", std::mem::size_of::<emu_models::cluster::Node>()),
        ("Service (struct)", std::mem::size_of::<emu_models::cluster::Service>()),
        ("Endpoint (struct)", std::mem::size_of::<emu_models::cluster::Endpoint>()),
        ("NodeQueues (struct)", std::mem::size_of::<emu_models::node::NodeQueues>()),
        ("Conntrack (struct)", std::mem::size_of::<emu_models::node::Conntrack>()),
    ];
    eprintln!("heap bytes, measured slope: cluster + run-time state");
    for (what, (c, w)) in [("node", node), ("pod", pod), ("Service", service), ("endpoint", endpoint)] {
        eprintln!("  per {what:<9} {c:>7.0} + {w:>6.0} = {:>7.0}", c + w);
    }
    for (what, n) in sizes {
        eprintln!("  {what:<18} {n} B");
    }
    // Bounds a regression would cross (measured on 2026-12-02: see
    // docs/performance.md): a pod's name, its records and its index
    // entries; a node's name, records, and run-time queues and table.
    assert!(pod.0 + pod.1 < 400.0, "a pod costs {pod:?} bytes");
    assert!(pod.0 > 100.0, "a pod must cost at least its record: {pod:?}");
    assert!(node.0 + node.1 < 1_200.0, "a node costs {node:?} bytes");
    assert!(node.1 >= std::mem::size_of::<emu_models::node::NodeQueues>() as f64, "{node:?}");
    assert!(service.0 + service.1 < 4_000.0, "a Service costs {service:?} bytes");
    assert!(endpoint.0 + endpoint.1 < 200.0, "an endpoint costs {endpoint:?} bytes");
}
