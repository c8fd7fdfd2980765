//! Contract tests run against every proxy mode (and every IPVS scheduler):
//! what any kube-proxy must do, whatever its algorithm.

use emu_engine::rng::{Domain, Stream};

use super::ipvs::{IpvsParams, Scheduler};
use super::*;
use crate::cluster::testing;
use crate::ids::{EpId, NodeId, SpId};

fn every_proxy(cluster: &Cluster) -> Vec<(String, Proxy)> {
    let mut v = Vec::new();
    for mode in [Mode::Iptables, Mode::Nftables, Mode::Ebpf] {
        let p = ProxyParams { mode, ..Default::default() };
        v.push((mode.name().to_string(), Proxy::new(cluster, &p, 1)));
    }
    for (name, scheduler) in Scheduler::ALL {
        let p = ProxyParams {
            mode: Mode::Ipvs,
            ipvs: IpvsParams { scheduler, ..Default::default() },
            ..Default::default()
        };
        v.push((format!("ipvs-{name}"), Proxy::new(cluster, &p, 1)));
    }
    v
}

fn query(node: u32, sp: u32, candidates: Candidates<'_>, client: u32) -> Query<'_> {
    Query {
        node: NodeId::new(node),
        sp: SpId::new(sp),
        entry: Entry::ClusterIp,
        candidates,
        client_ip: Ipv4(0xC612_0000 + client),
        dest_ip: Ipv4(0x0A60_0002),
        affinity: false,
        now_ns: 0,
        extra: &[],
        version: 0,
    }
}

#[test]
fn every_mode_picks_only_among_the_candidates() {
    let cluster = testing::services_cluster(2, 3, 8);
    let subset = [1, 4, 6].map(EpId::new);
    for (name, mut proxy) in every_proxy(&cluster) {
        let mut rng = Stream::new(1, Domain(5), 0);
        for c in 0..200 {
            let d = proxy.pick(&cluster, &query(0, 3, Candidates::Subset(&subset), c), &mut rng).unwrap();
            assert!(subset.contains(&d.endpoint), "{name}: chose {}", d.endpoint);
            let d = proxy.pick(&cluster, &query(1, 3, Candidates::All(8), c), &mut rng).unwrap();
            assert!(d.endpoint.get() < 8, "{name}");
            proxy.closed(NodeId::new(1), SpId::new(3), Entry::ClusterIp, d.endpoint, 0);
        }
    }
}

#[test]
fn every_mode_reaches_every_endpoint_over_many_clients() {
    let cluster = testing::services_cluster(1, 1, 8);
    for (name, mut proxy) in every_proxy(&cluster) {
        if name == "ipvs-dh" {
            continue; // destination hashing pins a Service to one server by design
        }
        let mut rng = Stream::new(2, Domain(5), 0);
        let mut seen = [false; 8];
        for c in 0..4000 {
            let d = proxy.pick(&cluster, &query(0, 3, Candidates::All(8), c * 7919), &mut rng).unwrap();
            // Connections stay open: the least-connection schedulers then
            // spread them too.
            seen[d.endpoint.index()] = true;
        }
        assert!(seen.iter().all(|&s| s), "{name}: {seen:?}");
    }
}

#[test]
fn only_iptables_cost_grows_with_the_number_of_services() {
    let small = testing::services_cluster(1, 100, 2);
    let large = testing::services_cluster(1, 10_000, 2);
    for ((name, a), (_, b)) in every_proxy(&small).into_iter().zip(every_proxy(&large)) {
        let (ma, mb) = (a.miss().total_ns() as f64, b.miss().total_ns() as f64);
        if name == "iptables" {
            assert!(mb > ma * 10.0, "{name}: {ma} -> {mb}");
        } else {
            assert_eq!(ma, mb, "{name}: a miss must not depend on the number of Services");
        }
    }
}

#[test]
fn nftables_node_ports_cost_a_second_map_lookup_and_load_balancers_do_not() {
    // @service-ips holds ClusterIPs and load-balancer IPs; a node port
    // misses it and is found in @service-nodeports.
    let cluster = testing::services_cluster(1, 1, 2);
    let mut nft = Proxy::new(&cluster, &ProxyParams { mode: Mode::Nftables, ..Default::default() }, 1);
    let mut rng = Stream::new(1, Domain(5), 0);
    let mut lookups = |entry| {
        let q = Query { entry, ..query(0, 3, Candidates::All(2), 1) };
        nft.pick(&cluster, &q, &mut rng).unwrap().cost.entries
    };
    assert_eq!([lookups(Entry::ClusterIp), lookups(Entry::LoadBalancer), lookups(Entry::NodePort)], [1, 1, 2]);
}

#[test]
fn counts_name_what_each_mode_programs() {
    let cluster = testing::services_cluster(3, 10, 4);
    for (name, proxy) in every_proxy(&cluster) {
        let counts = proxy.counts();
        assert!(!counts.is_empty(), "{name}");
        let total: u64 = counts.iter().map(|c| c.1).sum();
        // 10 Services x 4 endpoints plus kube-dns: every mode holds at least
        // one entry per endpoint.
        assert!(total >= 42, "{name}: {counts:?}");
    }
}
