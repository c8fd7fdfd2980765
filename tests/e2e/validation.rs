//! The shipped validation workloads against published-figures.md: these
//! tests fail if the models drift from the figures docs/validation.md
//! quotes.

use super::util::*;

#[test]
fn kube_proxy_modes_have_the_published_shapes() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("modes");
    run_ok(&root().join("workloads/validation/kube-proxy-modes.toml"), &out, &[]);
    let s = csv(&out.join("summary.csv"));
    assert_eq!(s.len(), 9);
    let p50 = |mode: &str, services: &str| {
        let r = s.iter().find(|r| r["proxy.mode"] == mode && r["services[0].count"] == services).unwrap();
        assert_eq!(r["failed"], "0");
        f(r, "first_packet_p50_us")
    };
    // iptables: within 2x of the published 47 us at 5,000 Services...
    let at5k = p50("iptables", "5000");
    assert!(at5k > 47.0 / 2.0 && at5k < 47.0 * 2.0, "iptables 5k p50 {at5k}");
    // ...and close to linear: the 30k/5k ratio within 30% of the published 272/47.
    let ratio = p50("iptables", "30000") / at5k;
    assert!((ratio / (272.0 / 47.0) - 1.0).abs() < 0.3, "ratio {ratio}");
    assert!(p50("iptables", "10000") > at5k * 1.5);
    // nftables and IPVS: flat, within 15% from 5k to 30k, and near the
    // published nftables p50 of 12 us.
    for mode in ["nftables", "ipvs"] {
        let (a, b) = (p50(mode, "5000"), p50(mode, "30000"));
        assert!((b / a - 1.0).abs() < 0.15, "{mode}: {a} -> {b}");
        assert!((a / 12.0 - 1.0).abs() < 0.15, "{mode}: {a}");
    }
    // The rule counts users size clusters by.
    let c = csv(&out.join("cluster.csv"));
    let metric = |mode: &str, services: &str, k: &str| {
        c.iter()
            .find(|r| r["proxy.mode"] == mode && r["services[0].count"] == services && r["metric"] == k)
            .unwrap_or_else(|| panic!("{mode} {services} {k}"))["value"]
            .parse::<u64>()
            .unwrap()
    };
    // kube-dns adds 3 ports x 2 CoreDNS endpoints, `kubernetes` 1.
    assert_eq!(metric("iptables", "30000", "iptables_kube_svc_rules_per_node"), 30_000 * 10 + 7);
    assert_eq!(metric("nftables", "30000", "nft_endpoint_elements_per_node"), 30_000 * 10 + 7);
    assert_eq!(metric("ipvs", "5000", "ipvs_real_servers_per_node"), 5_000 * 10 + 7);
}

#[test]
fn pod_round_trips_match_the_daocloud_table() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("rtt");
    run_ok(&root().join("workloads/validation/daocloud-rtt.toml"), &out, &[]);
    let s = csv(&out.join("summary.csv"));
    // Calico BGP in the DaoCloud netperf TCP_RR table: 104 and 196 us.
    for (flow, published) in [("same-node", 104.0), ("cross-node", 196.0)] {
        let mean = f(row(&s, "flow", flow), "latency_mean_us");
        assert!((mean / published - 1.0).abs() < 0.02, "{flow}: {mean} vs {published}");
    }
}
