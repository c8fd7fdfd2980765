//! The semantics of NetworkPolicy on small clusters.

use super::*;
use crate::cluster::{build, testing, Cluster, ClusterSpec};

fn lbl(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn policy(name: &str, ns: &str, pods: &[(&str, &str)]) -> NetworkPolicySpec {
    NetworkPolicySpec {
        origin: Origin { file: "test".into(), line: 0, path: format!("network_policies.{name}") },
        name: name.into(),
        namespace: ns.into(),
        pod_selector: LabelSelector::labels(lbl(pods)),
        policy_types: None,
        ingress: vec![],
        egress: vec![],
    }
}

fn from_pods(pairs: &[(&str, &str)]) -> PeerSpec {
    PeerSpec { pod_selector: Some(LabelSelector::labels(lbl(pairs))), ..Default::default() }
}

fn tcp(port: u32) -> PolicyPortSpec {
    PolicyPortSpec { protocol: Protocol::Tcp, port: Some(PortRef::Number(port)), end_port: None }
}

/// Namespaces `default` and `other` (labelled team=b); pods web (app=web,
/// port 8080 named `http`), client (app=client) and, in `other`, remote
/// (app=client).
fn cluster(policies: Vec<NetworkPolicySpec>) -> Cluster {
    let mut s: ClusterSpec = testing::spec(2);
    s.namespaces = vec!["other".into()];
    s.namespace_labels = [("other".to_string(), lbl(&[("team", "b")]))].into_iter().collect();
    s.pods.push(testing::pods("web", 2, 8080));
    s.pods.push(testing::pods("client", 1, 9000));
    let mut remote = testing::pods("remote", 1, 9000);
    remote.namespace = "other".into();
    remote.labels = lbl(&[("app", "client")]);
    s.pods.push(remote);
    s.network_policies = policies;
    build(&s, 1).expect("test cluster builds")
}

fn pod<'a>(cl: &'a Cluster, ns: &str, name: &str) -> &'a Pod {
    &cl.pods[cl.pod_by_name(cl.namespace(ns).unwrap(), name).unwrap().index()]
}

fn ingress(cl: &Cluster, from: &Pod, to: &Pod, port: u16) -> Verdict {
    cl.policies.check(Direction::Ingress, to, Remote::Pod(from, from.ip), port, Protocol::Tcp)
}

#[test]
fn no_policy_no_isolation_and_an_empty_ingress_list_denies_everything() {
    let cl = cluster(vec![]);
    let (c, w) = (pod(&cl, "default", "client"), pod(&cl, "default", "web-0"));
    assert_eq!(ingress(&cl, c, w, 8080), Verdict { allowed: true, isolated: false, by: None, rules: 0 });
    let cl = cluster(vec![policy("deny", "default", &[("app", "web")])]);
    let (c, w) = (pod(&cl, "default", "client"), pod(&cl, "default", "web-0"));
    let v = ingress(&cl, c, w, 8080);
    assert!(!v.allowed && v.isolated);
    // The jump to the policy's chain and the final drop.
    assert_eq!(v.rules, 2);
    // Not selected: the client is not isolated; egress is not restricted.
    assert!(ingress(&cl, w, c, 9000).allowed);
    assert!(cl.policies.check(Direction::Egress, w, Remote::Pod(c, c.ip), 9000, Protocol::Tcp).allowed);
}

#[test]
fn a_rule_without_peers_allows_all_and_a_pod_selector_stays_in_its_namespace() {
    let mut all = policy("all", "default", &[("app", "web")]);
    all.ingress = vec![RuleSpec::default()];
    let cl = cluster(vec![all]);
    let (r, w) = (pod(&cl, "other", "remote"), pod(&cl, "default", "web-1"));
    assert!(ingress(&cl, r, w, 1).allowed);
    assert!(cl.policies.check(Direction::Ingress, w, Remote::Addr(Ipv4(0x0808_0808)), 80, Protocol::Tcp).allowed);

    let mut sel = policy("sel", "default", &[("app", "web")]);
    sel.ingress = vec![RuleSpec { peers: vec![from_pods(&[("app", "client")])], ports: vec![] }];
    let cl = cluster(vec![sel]);
    let (c, r, w) = (pod(&cl, "default", "client"), pod(&cl, "other", "remote"), pod(&cl, "default", "web-0"));
    assert!(ingress(&cl, c, w, 8080).allowed);
    // Same labels, other namespace: not selected without a namespaceSelector.
    assert!(!ingress(&cl, r, w, 8080).allowed);
}

#[test]
fn namespace_and_pod_selectors_in_one_peer_are_anded_in_two_peers_ored() {
    let ns_b = LabelSelector::labels(lbl(&[("team", "b")]));
    let mut and = policy("and", "default", &[("app", "web")]);
    and.ingress = vec![RuleSpec {
        peers: vec![PeerSpec {
            namespace_selector: Some(ns_b.clone()),
            pod_selector: Some(LabelSelector::labels(lbl(&[("app", "client")]))),
            ..Default::default()
        }],
        ports: vec![],
    }];
    let cl = cluster(vec![and]);
    let (c, r, w) = (pod(&cl, "default", "client"), pod(&cl, "other", "remote"), pod(&cl, "default", "web-0"));
    assert!(ingress(&cl, r, w, 8080).allowed);
    assert!(!ingress(&cl, c, w, 8080).allowed, "default is not team=b");

    let mut or = policy("or", "default", &[("app", "web")]);
    or.ingress = vec![RuleSpec {
        peers: vec![PeerSpec { namespace_selector: Some(ns_b), ..Default::default() }, from_pods(&[("app", "client")])],
        ports: vec![],
    }];
    let cl = cluster(vec![or]);
    let (c, r, w) = (pod(&cl, "default", "client"), pod(&cl, "other", "remote"), pod(&cl, "default", "web-0"));
    assert!(ingress(&cl, r, w, 8080).allowed && ingress(&cl, c, w, 8080).allowed);
    // The automatic label selects a namespace by name.
    let mut by_name = policy("name", "default", &[("app", "web")]);
    by_name.ingress = vec![RuleSpec {
        peers: vec![PeerSpec {
            namespace_selector: Some(LabelSelector::labels(lbl(&[(NAMESPACE_NAME_LABEL, "default")]))),
            ..Default::default()
        }],
        ports: vec![],
    }];
    let cl = cluster(vec![by_name]);
    let (c, r, w) = (pod(&cl, "default", "client"), pod(&cl, "other", "remote"), pod(&cl, "default", "web-0"));
    assert!(ingress(&cl, c, w, 8080).allowed && !ingress(&cl, r, w, 8080).allowed);
}

#[test]
fn ports_numbers_ranges_names_and_protocols() {
    let mut p = policy("ports", "default", &[("app", "web")]);
    p.ingress = vec![RuleSpec {
        peers: vec![],
        ports: vec![
            PolicyPortSpec { end_port: Some(8100), ..tcp(8090) },
            PolicyPortSpec { port: Some(PortRef::Name("http".into())), ..tcp(0) },
            PolicyPortSpec { protocol: Protocol::Udp, ..tcp(53) },
        ],
    }];
    let cl = cluster(vec![p]);
    let (c, w) = (pod(&cl, "default", "client"), pod(&cl, "default", "web-0"));
    for (port, proto, ok) in [
        (8080, Protocol::Tcp, true), // the named port `http`
        (8089, Protocol::Tcp, false),
        (8090, Protocol::Tcp, true),
        (8100, Protocol::Tcp, true),
        (8101, Protocol::Tcp, false),
        (53, Protocol::Udp, true),
        (53, Protocol::Tcp, false),
        (8080, Protocol::Udp, false), // `http` is a TCP port
    ] {
        let v = cl.policies.check(Direction::Ingress, w, Remote::Pod(c, c.ip), port, proto);
        assert_eq!(v.allowed, ok, "{port}/{proto}");
    }
}

#[test]
fn ip_blocks_with_except_the_resident_node_and_union_of_policies() {
    let block = |cidr: &str, except: &[&str]| PeerSpec {
        ip_block: Some(IpBlockSpec {
            cidr: cidr.parse().unwrap(),
            except: except.iter().map(|e| e.parse().unwrap()).collect(),
            ipv6: false,
        }),
        ..Default::default()
    };
    let mut a = policy("a-block", "default", &[("app", "web")]);
    a.ingress = vec![RuleSpec { peers: vec![block("198.51.100.0/24", &["198.51.100.128/25"])], ports: vec![] }];
    let mut b = policy("b-client", "default", &[]);
    b.ingress = vec![RuleSpec { peers: vec![from_pods(&[("app", "client")])], ports: vec![tcp(8080)] }];
    let cl = cluster(vec![b, a]);
    let (c, w) = (pod(&cl, "default", "client"), pod(&cl, "default", "web-0"));
    let chk = |r: Remote| cl.policies.check(Direction::Ingress, w, r, 8080, Protocol::Tcp);
    assert!(chk(Remote::Addr("198.51.100.7".parse().unwrap())).allowed);
    assert!(!chk(Remote::Addr("198.51.100.200".parse().unwrap())).allowed, "in except");
    assert!(!chk(Remote::Addr("192.168.0.3".parse().unwrap())).allowed, "another node's SNAT address");
    assert!(chk(Remote::Host).allowed, "the resident node always passes");
    // The union, evaluated in (namespace, name) order: a-block, then b-client.
    let v = chk(Remote::Pod(c, c.ip));
    assert_eq!(v.by.map(|i| cl.policies.list[i as usize].name.as_str()), Some("b-client"));
    // a-block: jump + one rule not matching; b-client: jump + its rule.
    assert_eq!(v.rules, 4);
    // The policy with an empty selector selects the client too.
    assert_eq!(cl.policies.selecting(Direction::Ingress, c.workload).count(), 1);
}

#[test]
fn egress_defaults_and_named_ports_of_the_destination() {
    let mut e = policy("egress", "default", &[("app", "client")]);
    e.egress = vec![RuleSpec {
        peers: vec![from_pods(&[("app", "web")])],
        ports: vec![PolicyPortSpec { port: Some(PortRef::Name("http".into())), ..tcp(0) }],
    }];
    assert_eq!(e.types(), [true, true], "egress rules add Egress to the default types");
    let cl = cluster(vec![e]);
    let (c, w) = (pod(&cl, "default", "client"), pod(&cl, "default", "web-0"));
    let out = |to: Remote, port| cl.policies.check(Direction::Egress, c, to, port, Protocol::Tcp);
    assert!(out(Remote::Pod(w, w.ip), 8080).allowed);
    assert!(!out(Remote::Pod(w, w.ip), 8081).allowed);
    // A named port never matches an address that is not a pod.
    assert!(!out(Remote::Addr(w.ip), 8080).allowed);
    // Ingress is isolated too (the default types), with no ingress rule.
    assert!(!ingress(&cl, w, c, 9000).allowed);
}

#[test]
fn match_expressions_select_as_the_api_defines() {
    let req = |op, values: &[&str]| Requirement {
        key: "app".into(),
        operator: op,
        values: values.iter().map(|v| v.to_string()).collect(),
    };
    let web = lbl(&[("app", "web")]);
    let none = lbl(&[("tier", "x")]);
    assert!(req(Operator::In, &["web", "db"]).matches(&web) && !req(Operator::In, &["db"]).matches(&web));
    assert!(!req(Operator::NotIn, &["web"]).matches(&web) && req(Operator::NotIn, &["web"]).matches(&none));
    assert!(req(Operator::Exists, &[]).matches(&web) && !req(Operator::Exists, &[]).matches(&none));
    assert!(req(Operator::DoesNotExist, &[]).matches(&none) && !req(Operator::DoesNotExist, &[]).matches(&web));
    assert!(requirement_problem(&req(Operator::In, &[])).is_some());
    assert!(requirement_problem(&req(Operator::Exists, &["x"])).is_some());
}

#[test]
fn bad_fields_are_refused_with_their_path() {
    let mut p = policy("bad", "default", &[]);
    p.ingress = vec![RuleSpec { peers: vec![], ports: vec![PolicyPortSpec { end_port: Some(79), ..tcp(80) }] }];
    let mut s = testing::spec(1);
    s.network_policies = vec![p.clone()];
    let e = build(&s, 1).unwrap_err();
    assert_eq!(e.field, "ingress[0].ports[0].end_port", "{e}");
    p.namespace = "nowhere".into();
    s.network_policies = vec![p];
    assert_eq!(build(&s, 1).unwrap_err().field, "namespace");
    assert!(except_problem("10.0.0.0/8".parse().unwrap(), "11.0.0.0/16".parse().unwrap()).is_some());
    assert!(except_problem("10.0.0.0/8".parse().unwrap(), "10.0.0.0/8".parse().unwrap()).is_some());
    assert!(except_problem("10.0.0.0/8".parse().unwrap(), "10.1.0.0/16".parse().unwrap()).is_none());
}
