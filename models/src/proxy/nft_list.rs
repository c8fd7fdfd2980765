//! What kube-proxy programs on a node in nftables and IPVS mode, as the
//! real tools print it: `nft list table ip kube-proxy` (the nat side: the
//! `service-ips` and `service-nodeports` verdict maps the cost model's one
//! lookup stands for, the per-Service `service-`, `local-`, `external-`
//! chains with their `numgen random` vmaps, the `endpoint-` chains, the
//! affinity sets) and `ipvsadm -Ln` (a virtual server per ClusterIP,
//! load-balancer IP and node port with its real servers).
//!
//! Chain names are kube-proxy's nftables names: the first 8 characters of
//! the base32 SHA-256 of `namespace/name/protocol/port-name` (with
//! `__ip/port` for an endpoint), then that string. Written as kube-proxy
//! writes them without `--cluster-cidr` and `--masquerade-all`; the filter
//! chains (rejects, firewall) are not printed.

use std::fmt::Write as _;

use super::iptables_save::{chain_hash, proto};
use super::ipvs::Scheduler;
use crate::cluster::{Cluster, Protocol, TrafficPolicy};
use crate::ids::{EpId, NodeId, SpId};

/// `namespace/name/protocol/port-name` of a Service port.
fn base(cl: &Cluster, sp: SpId) -> String {
    let p = &cl.service_ports[sp.index()];
    let s = &cl.services[p.service.index()];
    format!(
        "{}/{}/{}/{}",
        cl.namespaces[s.namespace as usize],
        s.name,
        proto(p.protocol),
        p.name.as_deref().unwrap_or("")
    )
}

/// kube-proxy's `hashAndTruncate`.
fn hashed(name: &str) -> String {
    format!("{}-{name}", &chain_hash(name)[..8])
}

/// A Service port's chain: prefix `service`, `local` or `external`.
pub fn chain(cl: &Cluster, sp: SpId, prefix: &str) -> String {
    format!("{prefix}-{}", hashed(&base(cl, sp)))
}

fn endpoint_key(cl: &Cluster, sp: SpId, ep: EpId) -> String {
    let e = cl.service_ports[sp.index()].endpoints[ep.index()];
    format!("{}__{}/{}", base(cl, sp), cl.pods[e.pod.index()].ip, e.port)
}

/// An endpoint's chain.
pub fn endpoint_chain(cl: &Cluster, sp: SpId, ep: EpId) -> String {
    format!("endpoint-{}", hashed(&endpoint_key(cl, sp, ep)))
}

fn affinity_set(cl: &Cluster, sp: SpId, ep: EpId) -> String {
    format!("affinity-{}", hashed(&endpoint_key(cl, sp, ep)))
}

/// The Service ports kube-proxy writes nat rules for: a ClusterIP and
/// endpoints.
fn with_rules(cl: &Cluster) -> impl Iterator<Item = SpId> + '_ {
    (0..cl.service_ports.len()).map(SpId::from_index).filter(|&sp| {
        let p = &cl.service_ports[sp.index()];
        !p.endpoints.is_empty() && cl.services[p.service.index()].has_cluster_ip()
    })
}

fn external(cl: &Cluster, sp: SpId) -> bool {
    let p = &cl.service_ports[sp.index()];
    p.node_port.is_some() || cl.services[p.service.index()].load_balancer_ip.is_some()
}

fn block(out: &mut String, head: &str, lines: &[String]) {
    let _ = writeln!(out, "\t{head} {{");
    for l in lines {
        let _ = writeln!(out, "\t\t{l}");
    }
    out.push_str("\t}\n");
}

fn elements(items: &[String]) -> String {
    format!("elements = {{ {} }}", items.join(", "))
}

/// `nft list table ip kube-proxy` on `node` (its nat chains).
pub fn render_nft(cl: &Cluster, node: NodeId) -> String {
    let sps: Vec<SpId> = with_rules(cl).collect();
    let mut out = String::from("table ip kube-proxy {\n\tcomment \"rules for kube-proxy\"\n");
    let mut objects: Vec<String> = Vec::new();
    let obj = |head: &str, lines: Vec<String>| {
        let mut s = String::new();
        block(&mut s, head, &lines);
        s
    };
    // Every ClusterIP, with endpoints or not, in address order.
    let mut ips: Vec<crate::addr::Ipv4> = cl.services.iter().filter_map(|s| s.cluster_ip).collect();
    ips.sort();
    ips.dedup();
    let unique: Vec<String> = ips.iter().map(|ip| ip.to_string()).collect();
    let mut set = vec!["type ipv4_addr".to_string(), "comment \"Active ClusterIPs\"".into()];
    if !unique.is_empty() {
        set.push(elements(&unique));
    }
    objects.push(obj("set cluster-ips", set));
    objects.push(obj(
        "set nodeport-ips",
        vec![
            "type ipv4_addr".into(),
            "comment \"IPs that accept NodePort traffic\"".into(),
            elements(&[cl.nodes[node.index()].ip.to_string()]),
        ],
    ));
    let mut service_ips = Vec::new();
    let mut nodeports = Vec::new();
    for &sp in &sps {
        let p = &cl.service_ports[sp.index()];
        let s = &cl.services[p.service.index()];
        let pr = proto(p.protocol);
        let internal = match s.internal_traffic_policy {
            TrafficPolicy::Cluster => Some(chain(cl, sp, "service")),
            // No local endpoint: kube-proxy drops it (a filter map, not printed).
            TrafficPolicy::Local if p.local_endpoints(node).is_empty() => None,
            TrafficPolicy::Local => Some(chain(cl, sp, "local")),
        };
        if let Some(internal) = internal {
            service_ips.push(format!("{} . {pr} . {} : goto {internal}", s.cluster_ip.expect("a ClusterIP"), p.port));
        }
        if let Some(lb) = s.load_balancer_ip {
            service_ips.push(format!("{lb} . {pr} . {} : goto {}", p.port, chain(cl, sp, "external")));
        }
        if let Some(np) = p.node_port {
            nodeports.push(format!("{pr} . {np} : goto {}", chain(cl, sp, "external")));
        }
    }
    let map = |comment: &str, ty: &str, items: &[String]| {
        let mut v = vec![format!("type {ty} : verdict"), format!("comment \"{comment}\"")];
        if !items.is_empty() {
            v.push(elements(items));
        }
        v
    };
    objects.push(obj(
        "map service-ips",
        map("ClusterIP, ExternalIP and LoadBalancer IP traffic", "ipv4_addr . inet_proto . inet_service", &service_ips),
    ));
    objects.push(obj("map service-nodeports", map("NodePort traffic", "inet_proto . inet_service", &nodeports)));
    for &sp in &sps {
        let s = &cl.services[cl.service_ports[sp.index()].service.index()];
        if let Some(t) = s.affinity_timeout_ns {
            for ep in (0..cl.service_ports[sp.index()].endpoints.len()).map(EpId::from_index) {
                objects.push(obj(
                    &format!("set {}", affinity_set(cl, sp, ep)),
                    vec![
                        "type ipv4_addr".into(),
                        "flags dynamic,timeout".into(),
                        format!("timeout {}s", t / 1_000_000_000),
                    ],
                ));
            }
        }
    }
    objects.push(obj(
        "chain nat-prerouting",
        vec!["type nat hook prerouting priority dstnat; policy accept;".into(), "jump services".into()],
    ));
    objects.push(obj(
        "chain nat-output",
        vec!["type nat hook output priority -100; policy accept;".into(), "jump services".into()],
    ));
    objects.push(obj(
        "chain nat-postrouting",
        vec!["type nat hook postrouting priority srcnat; policy accept;".into(), "jump masquerading".into()],
    ));
    objects.push(obj("chain mark-for-masquerade", vec!["meta mark set meta mark | 0x00004000".into()]));
    objects.push(obj(
        "chain masquerading",
        vec![
            "meta mark & 0x00004000 == 0x00000000 return".into(),
            "meta mark set meta mark ^ 0x00004000".into(),
            "masquerade fully-random".into(),
        ],
    ));
    objects.push(obj(
        "chain services",
        vec![
            "ip daddr . meta l4proto . th dport vmap @service-ips".into(),
            "ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports".into(),
        ],
    ));
    for &sp in &sps {
        let p = &cl.service_ports[sp.index()];
        let s = &cl.services[p.service.index()];
        let all: Vec<EpId> = (0..p.endpoints.len()).map(EpId::from_index).collect();
        let local = p.local_endpoints(node);
        let ext_local = external(cl, sp) && s.external_traffic_policy == TrafficPolicy::Local;
        let uses_cluster = s.internal_traffic_policy == TrafficPolicy::Cluster || external(cl, sp);
        let uses_local = s.internal_traffic_policy == TrafficPolicy::Local || ext_local;
        if uses_cluster {
            objects.push(obj(&format!("chain {}", chain(cl, sp, "service")), to_endpoints(cl, sp, &all)));
        }
        if uses_local && !local.is_empty() {
            objects.push(obj(&format!("chain {}", chain(cl, sp, "local")), to_endpoints(cl, sp, local)));
        }
        if external(cl, sp) {
            let svc_chain = chain(cl, sp, "service");
            let rules = match s.external_traffic_policy {
                TrafficPolicy::Cluster => vec!["jump mark-for-masquerade".to_string(), format!("goto {svc_chain}")],
                TrafficPolicy::Local => {
                    let mut v = vec![
                        "fib saddr type local jump mark-for-masquerade comment \"masquerade local traffic\""
                            .to_string(),
                        format!("fib saddr type local goto {svc_chain} comment \"short-circuit local traffic\""),
                    ];
                    if !local.is_empty() {
                        v.push(format!("goto {}", chain(cl, sp, "local")));
                    }
                    v
                }
            };
            objects.push(obj(&format!("chain {}", chain(cl, sp, "external")), rules));
        }
        let reached: &[EpId] = if uses_cluster { &all } else { local };
        for &ep in reached {
            let e = p.endpoints[ep.index()];
            let ip = cl.pods[e.pod.index()].ip;
            let mut rules = vec![format!("ip saddr {ip} jump mark-for-masquerade")];
            if s.affinity_timeout_ns.is_some() {
                rules.push(format!("update @{} {{ ip saddr }}", affinity_set(cl, sp, ep)));
            }
            rules.push(format!("meta l4proto {} dnat to {ip}:{}", proto(p.protocol), e.port));
            objects.push(obj(&format!("chain {}", endpoint_chain(cl, sp, ep)), rules));
        }
    }
    out.push_str(&objects.join("\n"));
    out.push_str("}\n");
    out
}

/// A service or local chain: affinity checks, then one random choice.
fn to_endpoints(cl: &Cluster, sp: SpId, eps: &[EpId]) -> Vec<String> {
    let s = &cl.services[cl.service_ports[sp.index()].service.index()];
    let mut v = Vec::new();
    if s.affinity_timeout_ns.is_some() {
        for &ep in eps {
            v.push(format!("ip saddr @{} goto {}", affinity_set(cl, sp, ep), endpoint_chain(cl, sp, ep)));
        }
    }
    let map: Vec<String> =
        eps.iter().enumerate().map(|(i, &ep)| format!("{i} : goto {}", endpoint_chain(cl, sp, ep))).collect();
    v.push(format!("numgen random mod {} vmap {{ {} }}", eps.len(), map.join(", ")));
    v
}

/// `ipvsadm -Ln` on `node`: a virtual server per ClusterIP, load-balancer
/// IP and node port (on the node's address) with its real servers, in
/// address order as ipvsadm sorts them.
pub fn render_ipvs(cl: &Cluster, node: NodeId, scheduler: Scheduler) -> String {
    let sched = Scheduler::ALL.iter().find(|(_, s)| *s == scheduler).map_or("rr", |(n, _)| n);
    let mut vs: Vec<(u8, u32, u16, String)> = Vec::new();
    let node_ip = cl.nodes[node.index()].ip;
    for p in &cl.service_ports {
        let s = &cl.services[p.service.index()];
        let Some(vip) = s.cluster_ip else { continue };
        // ipvsadm sorts by protocol number: TCP 6, UDP 17, SCTP 132.
        let number = match p.protocol {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
        };
        let pr = proto(p.protocol).to_uppercase();
        let persistent = s.affinity_timeout_ns.map_or(String::new(), |t| format!(" persistent {}", t / 1_000_000_000));
        // Real servers in address order; a Local policy's are the node's
        // own (all of them when it has none).
        let reals = |local: bool| {
            let mut eps: Vec<EpId> = if local && !p.local_endpoints(node).is_empty() {
                p.local_endpoints(node).to_vec()
            } else {
                (0..p.endpoints.len()).map(EpId::from_index).collect()
            };
            eps.sort_by_key(|&ep| {
                let e = p.endpoints[ep.index()];
                (cl.pods[e.pod.index()].ip, e.port)
            });
            let mut text = String::new();
            for ep in eps {
                let e = p.endpoints[ep.index()];
                let addr = format!("{}:{}", cl.pods[e.pod.index()].ip, e.port);
                let _ = writeln!(text, "  -> {addr:<28} Masq    {:<6} 0          0", e.weight);
            }
            text
        };
        let mut add = |ip: crate::addr::Ipv4, port: u16, local: bool| {
            let head = format!("{pr}  {ip}:{port} {sched}{persistent}");
            vs.push((number, ip.0, port, format!("{head}\n{}", reals(local))));
        };
        add(vip, p.port, s.internal_traffic_policy == TrafficPolicy::Local);
        let ext_local = s.external_traffic_policy == TrafficPolicy::Local;
        if let Some(lb) = s.load_balancer_ip {
            add(lb, p.port, ext_local);
        }
        if let Some(np) = p.node_port {
            add(node_ip, np, ext_local);
        }
    }
    vs.sort_by_key(|v| (v.0, v.1, v.2));
    let mut out = String::from(
        "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
    );
    for (_, _, _, text) in vs {
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{build, testing, ServiceType};

    #[test]
    fn chain_names_follow_kube_proxy_s_nftables_scheme() {
        let mut s = testing::spec(2);
        s.pods.push(testing::pods("web", 2, 8080));
        let mut v = testing::service("web", "web", 8080);
        v.kind = ServiceType::NodePort;
        s.services.push(v);
        let cl = build(&s, 1).unwrap();
        let web = cl.service_port(cl.service_by_name(0, "web").unwrap(), 80, Protocol::Tcp).unwrap();
        let name = chain(&cl, web, "service");
        assert!(name.starts_with("service-") && name.ends_with("-default/web/tcp/"), "{name}");
        assert_eq!(&name[8..16], &chain_hash("default/web/tcp/")[..8]);
        let text = render_nft(&cl, NodeId::new(0));
        assert!(text.contains(&format!("tcp . {} : goto external-", cl.service_ports[web.index()].node_port.unwrap())));
        assert!(text.contains("numgen random mod 2 vmap { 0 : goto endpoint-"), "{text}");
        let ipvs = render_ipvs(&cl, NodeId::new(1), Scheduler::Rr);
        assert_eq!(ipvs.matches("TCP  ").count(), 2 + 2, "the ClusterIP, the node port, kube-dns's TCP ports");
        assert!(ipvs.contains("TCP  192.168.0.2:"), "the node port on node-1's address: {ipvs}");
        assert!(ipvs.contains("  -> 10.244."), "{ipvs}");
    }
}
