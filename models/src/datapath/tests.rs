//! Calibration and shape tests of the data path.

use super::*;

fn rtt_us(p: &DataPathParams, leg: &Leg) -> f64 {
    let m = Msg::tcp(1024);
    (leg.idle_ns(p, m, |_, _| {}) + leg.reversed().idle_ns(p, m, |_, _| {})) as f64 / 1_000.0
}

fn pod(pod: u32, node: u32) -> Place {
    Place::Pod { pod: PodId::new(pod), node: NodeId::new(node) }
}

/// `super::route` to pod `to_pod` on node `to_node`, by index.
fn route(p: &DataPathParams, from: Place, to_pod: u32, to_node: u32) -> Leg {
    super::route(p, from, PodId::new(to_pod), NodeId::new(to_node))
}

fn n(i: u32) -> Option<NodeId> {
    Some(NodeId::new(i))
}

#[test]
fn reproduces_daocloud_round_trips() {
    let p = DataPathParams::default();
    // Calico BGP (routed): same node 104 us, cross node 196 us.
    let r = rtt_us(&p, &route(&p, pod(0, 0), 1, 0));
    assert!((r / 104.0 - 1.0).abs() < 0.01, "same-node {r}");
    let cross = rtt_us(&p, &route(&p, pod(0, 0), 1, 1));
    assert!((cross / 196.0 - 1.0).abs() < 0.01, "cross-node {cross}");
    // Node to node, 113 us: host sockets both ends.
    let host = rtt_us(&p, &route(&p, Place::Host { node: NodeId::new(0) }, 1, 1))
        - 2.0 * (p.bridge_ns + p.veth_ns) as f64 / 1_000.0;
    assert!((host / 113.0 - 1.0).abs() < 0.015, "node-node {host}");
    // Calico VXLAN: cross node 275 us, same node unchanged (105 published).
    let vx = DataPathParams { cni: Cni::Vxlan, ..Default::default() };
    let r = rtt_us(&vx, &route(&vx, pod(0, 0), 1, 1));
    assert!((r / 275.0 - 1.0).abs() < 0.01, "vxlan cross {r}");
    let r = rtt_us(&vx, &route(&vx, pod(0, 0), 1, 0));
    assert!((r / 105.0 - 1.0).abs() < 0.02, "vxlan same {r}");
    // Cilium: same node 66 us.
    let eb = DataPathParams { cni: Cni::Ebpf, ..Default::default() };
    let r = rtt_us(&eb, &route(&eb, pod(0, 0), 1, 0));
    assert!((r / 66.0 - 1.0).abs() < 0.01, "ebpf same {r}");
}

#[test]
fn routes_have_the_expected_shape() {
    let p = DataPathParams::default();
    let kinds = |l: Leg| l.hops().iter().map(|h| h.kind.name()).collect::<Vec<_>>().join(",");
    assert_eq!(kinds(route(&p, pod(3, 0), 3, 0)), "socket,loopback,socket");
    assert_eq!(kinds(route(&p, pod(3, 0), 4, 0)), "socket,veth,cpu,bridge,veth,socket");
    assert_eq!(kinds(route(&p, pod(3, 0), 4, 1)), "socket,veth,cpu,bridge,nic,underlay,nic,cpu,bridge,veth,socket");
    assert_eq!(
        kinds(route(&p, Place::External { node: NodeId::new(2) }, 4, 2)),
        "socket,external,nic,cpu,bridge,veth,socket"
    );
    assert_eq!(
        kinds(route(&p, Place::External { node: NodeId::new(2) }, 4, 1)),
        "socket,external,nic,cpu,nic,underlay,nic,cpu,bridge,veth,socket"
    );
    let vx = DataPathParams { cni: Cni::Vxlan, ..Default::default() };
    assert_eq!(
        kinds(route(&vx, pod(3, 0), 4, 1)),
        "socket,veth,cpu,bridge,vxlan,nic,underlay,nic,vxlan,cpu,bridge,veth,socket"
    );
    let eb = DataPathParams { cni: Cni::Ebpf, ..Default::default() };
    assert_eq!(kinds(route(&eb, pod(3, 0), 4, 0)), "socket,cpu,veth,ebpf_redirect,socket");
    assert_eq!(
        kinds(route(&eb, pod(3, 0), 4, 1)),
        "socket,cpu,ebpf_redirect,nic,underlay,nic,cpu,ebpf_redirect,socket"
    );
}

#[test]
fn the_way_back_is_sent_by_the_other_node() {
    let vx = DataPathParams { cni: Cni::Vxlan, ..Default::default() };
    let fwd = route(&vx, pod(0, 3), 1, 7);
    let back = fwd.reversed();
    let under = |l: &Leg| *l.hops().iter().find(|h| h.kind == HopKind::Underlay).unwrap();
    assert_eq!((under(&fwd).node, under(&fwd).peer), (n(3), n(7)));
    assert_eq!((under(&back).node, under(&back).peer), (n(7), n(3)));
    let cpus =
        |l: &Leg| l.hops().iter().filter(|h| h.kind == HopKind::Cpu).map(|h| (h.node, h.flags)).collect::<Vec<_>>();
    assert_eq!(cpus(&fwd), [(n(3), flags::ENCAP), (n(7), flags::DECAP)]);
    assert_eq!(cpus(&back), [(n(7), flags::ENCAP), (n(3), flags::DECAP)]);
}

#[test]
fn messages_are_cut_into_packets_by_the_mtu() {
    let p = DataPathParams::default();
    assert_eq!(p.mss(), 1448);
    assert_eq!(p.packets(Msg::tcp(1448)), 1);
    assert_eq!(p.packets(Msg::tcp(1449)), 2);
    assert_eq!(p.packets(Msg::tcp(0)), 1);
    assert_eq!(p.wire_bytes(Msg::tcp(10_000), false), 10_000 + 7 * 66);
    // VXLAN: pod MTU 1450, 50 B more per packet between nodes.
    let vx = DataPathParams { cni: Cni::Vxlan, ..Default::default() };
    assert_eq!((vx.pod_mtu(), vx.mss()), (1450, 1398));
    assert_eq!(vx.wire_bytes(Msg::tcp(10_000), true), 10_000 + 8 * (66 + 50));
    assert!(!vx.fragments());
    // 9000-byte jumbo frames: 8950 in the pods.
    let jumbo = DataPathParams { cni: Cni::Vxlan, link_mtu: 9000, ..Default::default() };
    assert_eq!(jumbo.pod_mtu(), 8950);
    // A wrong pod MTU of 1500 over VXLAN fragments every packet in two.
    let wrong = DataPathParams { cni: Cni::Vxlan, pod_mtu: 1500, ..Default::default() };
    assert!(wrong.fragments());
    let m = Msg::tcp(100_000);
    // Full packets fragment; a SYN or a small message does not.
    assert_eq!(wrong.fragmented(Msg::tcp(0)), 0);
    assert_eq!(wrong.fragmented(Msg::tcp(100)), 0);
    assert_eq!(wrong.fragmented(Msg::tcp(3 * wrong.mss())), 3);
    assert!(wrong.wire_bytes(m, true) > vx.wire_bytes(m, true) - (vx.packets(m) - wrong.packets(m)) as u64 * 116);
    assert!(wrong.cpu_ns(m, flags::DECAP) > vx.cpu_ns(m, flags::DECAP));
    // Without an overlay the MSS is clamped to the link (PMTU discovery).
    let routed_wrong = DataPathParams { pod_mtu: 9000, ..Default::default() };
    assert_eq!(routed_wrong.mss(), 1448);
}

#[test]
fn cpu_cost_matches_the_single_stream_benchmark() {
    // InfraBuilder: bare metal 31.4 Gbit/s on one stream at MTU 9000, i.e.
    // about 2.28 us of CPU per 9000-byte packet.
    let p = DataPathParams { link_mtu: 9000, ..Default::default() };
    let m = Msg::tcp(p.mss());
    let per_packet = p.cpu_ns(m, 0) as f64;
    assert!((per_packet / 2_280.0 - 1.0).abs() < 0.02, "{per_packet}");
    // Flannel VXLAN, 20.0 Gbit/s: encapsulation and decapsulation add 1.3 us.
    let vx = DataPathParams { cni: Cni::Vxlan, link_mtu: 9000, ..Default::default() };
    let m = Msg::tcp(vx.mss());
    let worst = vx.cpu_ns(m, flags::ENCAP).max(vx.cpu_ns(m, flags::DECAP)) as f64;
    let gbps = vx.mss() as f64 * 8.0 / worst;
    assert!((gbps / 20.0 - 1.0).abs() < 0.25, "{gbps} Gbit/s");
}

#[test]
fn a_fixed_hop_costs_its_latency_for_every_message() {
    // A walk adds a fixed hop's cost per connection, not per message
    // (`World::settle_walks`): that is exact only if no message changes it.
    for cni in [Cni::Routed, Cni::Vxlan, Cni::Ebpf] {
        let p = DataPathParams { cni, ..Default::default() };
        for kind in HopKind::ALL {
            for node in [None, n(1)] {
                let h =
                    Hop { kind, flags: flags::ENCAP | flags::OVERLAY, base_ns: 1_234, node, peer: n(2), far: false };
                let msgs = [Msg::tcp(0), Msg::tcp(1), Msg::tcp(100_000), Msg { bytes: 512, udp: true }];
                let costs: Vec<(u64, u64)> = msgs.iter().map(|&m| Leg::idle_hop_ns(&p, &h, m)).collect();
                match h.fixed_ns() {
                    Some(ns) => assert!(costs.iter().all(|&c| c == (0, ns)), "{kind:?}: {costs:?}"),
                    None => {
                        assert!(kind.is_capacity(), "{kind:?}");
                        assert_ne!(costs[0], costs[2], "{kind:?} {node:?}: its cost depends on the message");
                    }
                }
            }
        }
    }
}
