//! Unit tests of the world: exact latencies on an idle cluster, where the
//! answer can be computed by hand from the parameters.

use super::*;
use crate::cluster::{build, testing};
use crate::datapath::{route, serialization_ns, Msg, Place};
use crate::ids::{NodeId, PodId};
use crate::traffic::{Arrivals, Client, Flow, Target};
use emu_engine::Dist;

fn flow(client: Client, target: Target, keep_alive: bool) -> Flow {
    Flow {
        origin: Default::default(),
        name: "f".into(),
        client,
        target,
        arrivals: Arrivals::Closed { clients: 1, think: Dist::Constant(0) },
        requests: Some(10),
        duration_ns: None,
        start_ns: 0,
        request_bytes: 100,
        response_bytes: 1000,
        keep_alive,
        timeout_ns: 1_000_000_000,
        max_connection_age_ns: None,
    }
}

#[test]
fn an_idle_cross_node_request_costs_exactly_its_four_legs() {
    let mut s = testing::spec(2);
    s.dns_replicas = 0;
    s.pods.push(testing::pods("a", 1, 9000));
    s.pods.push(testing::pods("b", 1, 8080));
    s.pods[1].node = Some("node-1".into());
    let c = build(&s, 1).unwrap();
    let p = Params::default();
    let dp = &p.datapath;
    let leg = route(dp, Place::Pod { pod: PodId::new(0), node: NodeId::new(0) }, PodId::new(1), NodeId::new(1));
    let back = leg.reversed();
    let walk = |bytes: u32| leg.idle_ns(dp, Msg::tcp(bytes), |_, _| {});
    let walk_back = |bytes: u32| back.idle_ns(dp, Msg::tcp(bytes), |_, _| {});
    // SYN and SYN-ACK carry no payload; both nodes walk all of
    // KUBE-SERVICES (no user Services: only the NODEPORTS jump) and create
    // a conntrack entry for the new flow.
    let first = 2 * (p.proxy.iptables.conntrack_new_ns + p.proxy.iptables.rule_ns);
    let expected = walk(0) + walk_back(0) + first + walk(100) + walk_back(1000);
    let r = simulate(
        &c,
        p.clone(),
        vec![flow(Client::Pods(vec![PodId::new(0)].into()), Target::Pod { pod: PodId::new(1), port: 8080 }, false)],
        vec![],
    )
    .unwrap();
    let l = &r.flows[0].latency;
    assert_eq!(l.count(), 10);
    assert_eq!(l.mean_ns(), expected as f64);
    // Size is part of it: 1000 B more cost 800 ns more on the 10 Gbit/s NIC
    // and 140 ns more of CPU on each node.
    assert_eq!(serialization_ns(1066u64, 10_000_000_000) - serialization_ns(66u64, 10_000_000_000), 800);
    assert_eq!(walk(1000) - walk(0), 800 + 2 * 140);
    // Kept alive, only the first request pays the handshake.
    let r = simulate(
        &c,
        p.clone(),
        vec![flow(Client::Pods(vec![PodId::new(0)].into()), Target::Pod { pod: PodId::new(1), port: 8080 }, true)],
        vec![],
    )
    .unwrap();
    let reuse = walk(100) + walk_back(1000);
    assert_eq!(r.flows[0].latency.mean_ns(), (expected + 9 * reuse) as f64 / 10.0);
    assert_eq!(r.flows[0].connections, 1);
}

#[test]
fn a_server_with_one_worker_queues_in_fifo_order() {
    let mut s = testing::spec(1);
    s.dns_replicas = 0;
    s.pods.push(testing::pods("a", 1, 9000));
    s.pods.push(testing::pods("b", 1, 8080));
    let c = build(&s, 1).unwrap();
    let server = Server {
        pods: vec![PodId::new(1)],
        port: 8080,
        service_time: Dist::Constant(1_000_000),
        concurrency: 1,
        queue_limit: u32::MAX,
    };
    let mut f = flow(Client::Pods(vec![PodId::new(0)].into()), Target::Pod { pod: PodId::new(1), port: 8080 }, true);
    f.arrivals = Arrivals::Closed { clients: 4, think: Dist::Constant(0) };
    f.requests = Some(400);
    let r = simulate(&c, Params::default(), vec![f], vec![server]).unwrap();
    let st = &r.flows[0];
    assert_eq!(st.completed, 400);
    // Four clients on one 1 ms worker: the worker is the bottleneck, so
    // throughput is 1,000 requests/s, and a request arriving one round trip
    // after its previous answer waits for the three ahead of it: 3 ms less
    // that round trip.
    assert!((st.throughput_rps() / 1000.0 - 1.0).abs() < 0.01, "{}", st.throughput_rps());
    let dp = DataPathParams::default();
    let leg = route(&dp, Place::Pod { pod: PodId::new(0), node: NodeId::new(0) }, PodId::new(1), NodeId::new(0));
    let rtt =
        (leg.idle_ns(&dp, Msg::tcp(100), |_, _| {}) + leg.reversed().idle_ns(&dp, Msg::tcp(1000), |_, _| {})) as f64;
    let q = st.hops[crate::datapath::HopKind::Queue as usize];
    assert!((q.mean() - (3e6 - rtt)).abs() / 3e6 < 0.01, "queue {} vs {}", q.mean(), 3e6 - rtt);
}

#[test]
fn events_stay_small() {
    // Pending events cost the queue's (u128 key, event) entry: 32 bytes
    // while an event fits in 16 (docs/performance.md counts on it).
    assert!(std::mem::size_of::<Ev>() <= 16, "{}", std::mem::size_of::<Ev>());
    eprintln!(
        "sizes: Ev {} Conn {} Req {} Pod {} NodeQueues {} Conntrack {}",
        std::mem::size_of::<Ev>(),
        std::mem::size_of::<super::run::Conn>(),
        std::mem::size_of::<super::run::Req>(),
        std::mem::size_of::<crate::cluster::Pod>(),
        std::mem::size_of::<crate::node::NodeQueues>(),
        std::mem::size_of::<crate::node::Conntrack>()
    );
}

/// `emu trace`'s recorder only watches: attached and idle it changes
/// nothing; following a request it records that request's exact latency
/// and the run's results up to then are those of the untraced run.
#[test]
fn the_trace_recorder_changes_nothing_and_its_steps_tile_the_latency() {
    let mut s = testing::spec(3);
    s.pods.push(testing::pods("web", 4, 8080));
    s.pods.push(testing::pods("client", 2, 9000));
    s.services.push(testing::service("web", "web", 8080));
    let c = build(&s, 1).unwrap();
    let clients: Vec<PodId> =
        (0..c.pods.len()).filter(|&p| c.pods[p].name.starts_with("client")).map(PodId::from_index).collect();
    let mut f = flow(Client::Pods(clients.into()), Target::Name { name: "web".into(), port: 80 }, true);
    (f.requests, f.arrivals) = (Some(200), Arrivals::Open { rate_per_s: 20_000.0 });
    let plain = simulate(&c, Params::default(), vec![f.clone()], vec![]).unwrap();
    let idle = TraceRequest { flow: 0, nth: u64::MAX };
    let (watched, t) = simulate_traced(&c, Params::default(), vec![f.clone()], vec![], idle).unwrap();
    assert_eq!(format!("{plain:?}"), format!("{watched:?}"));
    assert_eq!(t.outcome, Outcome::NotIssued);
    assert!(t.steps.is_empty());
    // Request 150 of the flow, on a kept-alive connection under load.
    let (_, t) = simulate_traced(&c, Params::default(), vec![f], vec![], TraceRequest { flow: 0, nth: 150 }).unwrap();
    let Outcome::Completed(latency) = t.outcome else { panic!("{:?}", t.outcome) };
    assert_eq!(t.end_ns - t.start_ns, latency);
    let mut at = t.start_ns;
    for st in &t.steps {
        if st.ns > 0 || !matches!(st.what, What::Event { .. }) {
            assert_eq!(st.at_ns, at, "{st:?}");
            at += st.ns;
        }
    }
    assert_eq!(at, t.end_ns);
    assert!(t.steps.iter().any(|s| matches!(&s.what, What::Server { kind: "app", .. })));
    // It is the latency the untraced run recorded for some request.
    assert!(plain.flows[0].latency.max_ns() >= latency && plain.flows[0].latency.min_ns() <= latency);
}

#[test]
fn sources_keeps_its_first_triples_whole_and_counts_the_rest_by_kind() {
    // Six kept-alive clients on three nodes ask one server: the ones on
    // its node answer sooner and send more. Their requests after the first
    // wait in their connection's counts until it settles.
    let mut s = testing::spec(3);
    s.dns_replicas = 0;
    s.pods.push(testing::pods("a", 6, 9000));
    s.pods.push(testing::pods("b", 1, 8080));
    let c = build(&s, 1).unwrap();
    let server = PodId::new(6);
    let clients: Vec<PodId> = (0..6).map(PodId::new).collect();
    let mut f = flow(Client::Pods(clients.into()), Target::Pod { pod: server, port: 8080 }, true);
    f.arrivals = Arrivals::Closed { clients: 6, think: Dist::Constant(0) };
    f.requests = Some(600);
    let run = |cap: usize| {
        let mut w = World::new(&c, Params::default(), vec![f.clone()], vec![]).unwrap();
        w.max_sources = cap;
        let mut sched = emu_engine::Scheduler::new();
        w.start(&mut sched);
        while !sched.is_done() {
            sched.run_steps(&mut w, 1_000_000);
        }
        w.finish(&sched)
    };
    let all = run(MAX_SOURCES);
    assert_eq!(all.sources.len(), 6, "a triple per client: {:?}", all.sources);
    assert_eq!(all.sources.values().sum::<u64>(), 600);
    assert!(all.sources_overflow.is_empty());
    let counts: std::collections::BTreeSet<u64> = all.sources.values().copied().collect();
    assert!(counts.len() > 1, "clients nearer the server send more: {:?}", all.sources);
    // Room for two: the two first seen keep every request of theirs, the
    // other four's go to the overflow as requests from pods.
    let capped = run(2);
    assert_eq!(capped.sources.len(), 2);
    for (k, n) in &capped.sources {
        assert_eq!(all.sources.get(k), Some(n), "a kept triple counts all its requests");
    }
    let rest: u64 = all.sources.iter().filter(|(k, _)| !capped.sources.contains_key(k)).map(|(_, n)| n).sum();
    assert_eq!(capped.sources_overflow.into_iter().collect::<Vec<_>>(), vec![((0, server, "pod"), rest)]);
}
