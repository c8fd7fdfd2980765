//! Unit tests of cluster construction: IPAM, placement, allocation,
//! endpoints and the errors of each.

use super::testing::{pods, service, spec};
use super::*;

fn ip(s: &str) -> Ipv4 {
    s.parse().unwrap()
}

#[test]
fn nodes_get_their_block_and_pods_start_at_dot_two() {
    let mut s = spec(3);
    s.dns_replicas = 0;
    s.pods.push(pods("web", 4, 80));
    let c = build(&s, 1).unwrap();
    assert_eq!(c.nodes[2].pod_cidr.to_string(), "10.244.2.0/24");
    assert_eq!(c.nodes[2].bridge_ip, ip("10.244.2.1"));
    assert_eq!(c.nodes[1].ip, ip("192.168.0.2"));
    // Round-robin: web-0 node-0, web-1 node-1, web-2 node-2, web-3 node-0.
    let placed: Vec<(u32, String)> = c.pods.iter().map(|p| (p.node.get(), p.ip.to_string())).collect();
    assert_eq!(
        placed,
        [(0, "10.244.0.2".into()), (1, "10.244.1.2".into()), (2, "10.244.2.2".into()), (0, "10.244.0.3".into())]
    );
    assert_eq!(c.pod_by_ip(ip("10.244.0.3")), Some(PodId::new(3)));
}

#[test]
fn explicit_ips_pick_the_node_and_are_skipped_by_allocation() {
    let mut s = spec(2);
    s.dns_replicas = 0;
    let mut a = pods("a", 1, 80);
    a.ip = Some(ip("10.244.1.2"));
    s.pods.push(a);
    s.pods.push(pods("b", 2, 80));
    let c = build(&s, 1).unwrap();
    assert_eq!(c.pods[0].node, NodeId::new(1));
    // b-0 goes to node-0 (.2), b-1 to node-1 where .2 is taken: .3.
    assert_eq!(c.pods[2].ip, ip("10.244.1.3"));
}

#[test]
fn random_placement_is_seeded() {
    let mut s = spec(50);
    s.placement = Placement::Random;
    s.pods.push(pods("web", 100, 80));
    let nodes = |seed| build(&s, seed).unwrap().pods.iter().map(|p| p.node).collect::<Vec<_>>();
    assert_eq!(nodes(3), nodes(3));
    assert_ne!(nodes(3), nodes(4));
}

#[test]
fn pod_cidr_exhaustion_is_an_error_not_a_wrap() {
    let mut s = spec(1);
    s.dns_replicas = 0;
    s.node_cidr_mask_size = 28; // 16 addresses: .2 to .14 usable, 13 pods
    s.pods.push(pods("web", 13, 80));
    assert!(build(&s, 1).is_ok());
    s.pods[0].replicas = 14;
    let e = build(&s, 1).unwrap_err();
    assert!(e.message.contains("10.244.0.0/28 of node-0 is full (13 pod IPs)"), "{e}");
    assert!(e.message.contains("web-13"), "{e}");
}

#[test]
fn cluster_ips_skip_reserved_addresses_and_honour_explicit_ones() {
    let mut s = spec(1);
    s.pods.push(pods("web", 1, 80));
    let mut fixed = service("fixed", "web", 80);
    fixed.cluster_ip = Some(ip("10.96.0.2"));
    s.services.push(service("a", "web", 80));
    s.services.push(fixed);
    let c = build(&s, 1).unwrap();
    assert_eq!(c.services[0].name, "kube-dns");
    assert_eq!(c.services[0].cluster_ip, Some(ip("10.96.0.10")));
    assert_eq!(c.services[1].cluster_ip, Some(ip("10.96.0.3")), ".2 is taken by `fixed`");
    assert_eq!(c.services[2].cluster_ip, Some(ip("10.96.0.2")));
    let mut dup = service("dup", "web", 80);
    dup.cluster_ip = Some(ip("10.96.0.2"));
    s.services.push(dup);
    assert!(build(&s, 1).unwrap_err().message.contains("already the ClusterIP of Service `fixed`"));
}

#[test]
fn node_ports_are_checked_and_allocated_lowest_free() {
    let mut s = spec(1);
    s.pods.push(pods("web", 1, 80));
    let mut a = service("a", "web", 80);
    a.kind = ServiceType::NodePort;
    a.ports[0].node_port = Some(30000);
    let mut b = service("b", "web", 80);
    b.kind = ServiceType::NodePort;
    s.services.extend([a.clone(), b]);
    let c = build(&s, 1).unwrap();
    let np = |svc: usize| c.service_ports[c.services[svc].ports[0].index()].node_port;
    assert_eq!((np(1), np(2)), (Some(30000), Some(30001)));
    a.ports[0].node_port = Some(29999);
    s.services[0] = a;
    let e = build(&s, 1).unwrap_err();
    assert_eq!(e.field, "ports[0].node_port");
    assert!(e.message.contains("outside the range 30000-32767"));
}

#[test]
fn endpoints_follow_selector_namespace_and_named_ports() {
    let mut s = spec(2);
    s.namespaces.push("other".into());
    s.pods.push(pods("web", 3, 8080));
    let mut foreign = pods("web-x", 1, 8080);
    foreign.namespace = "other".into();
    foreign.labels = [("app".to_string(), "web".to_string())].into_iter().collect();
    s.pods.push(foreign);
    let mut named = service("named", "web", 0);
    named.ports[0].target_port = Some(TargetPort::Name("http".into()));
    s.services.push(named);
    let c = build(&s, 1).unwrap();
    let sp = &c.service_ports[c.services[1].ports[0].index()];
    // Same-namespace pods only; the named port resolves to 8080 on each.
    assert_eq!(sp.endpoints.iter().map(|e| e.pod.get()).collect::<Vec<_>>(), [0, 1, 2]);
    assert!(sp.endpoints.iter().all(|e| e.port == 8080));
}

#[test]
fn a_selector_matching_nothing_warns_and_a_dead_target_port_errors() {
    let mut s = spec(1);
    s.pods.push(pods("web", 1, 8080));
    s.services.push(service("nobody", "ghost", 8080));
    let c = build(&s, 1).unwrap();
    assert!(c.warnings.iter().any(|w| w.contains("matches no pod")));
    assert!(c.service_ports[c.services[1].ports[0].index()].endpoints.is_empty());
    s.services.push(service("wrong", "web", 9090));
    let e = build(&s, 1).unwrap_err();
    assert!(e.message.contains("target port `9090` matches no TCP container port"), "{e}");
}

#[test]
fn containers_of_a_pod_cannot_share_a_port() {
    let mut s = spec(1);
    let mut p = pods("web", 1, 80);
    p.containers.push(ContainerSpec {
        name: "side".into(),
        ports: vec![PortSpec { name: None, port: 80, protocol: Protocol::Tcp }],
    });
    s.pods.push(p.clone());
    let e = build(&s, 1).unwrap_err();
    assert_eq!(e.field, "containers[1].ports[0]");
    // The same number over UDP is another socket: allowed.
    p.containers[1].ports[0].protocol = Protocol::Udp;
    s.pods[0] = p;
    assert!(build(&s, 1).is_ok());
}
