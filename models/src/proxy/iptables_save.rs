//! What kube-proxy in iptables mode programs on a node, as `iptables-save
//! -t nat` prints it: the rules whose positions the cost model charges
//! ([`Iptables`]: KUBE-SERVICES in the node's own order, KUBE-NODEPORTS,
//! KUBE-EXT-*, KUBE-SVC-* / KUBE-SVL-* with their `statistic` (and
//! `recent`) rules, KUBE-SEP-*), plus the fixed chains around them
//! (KUBE-MARK-MASQ, KUBE-POSTROUTING). Chain names are kube-proxy's: the
//! first 16 characters of the base32 of the SHA-256 of the Service port's
//! name and protocol (and, for KUBE-SEP, the endpoint), so they look like a
//! real node's (`kube-system/kube-dns:dns` over UDP is
//! `KUBE-SVC-TCOU7JCQXEZGVUNU` here as on every cluster).
//!
//! Written as kube-proxy writes them without `--cluster-cidr` (no local
//! traffic detector: no "masquerade off-cluster traffic" rule heading
//! KUBE-SVC, no "pod traffic" rule in KUBE-EXT), which is the set the cost
//! model counts. Services without endpoints get no nat rule (kube-proxy's
//! REJECT lives in the filter table, not rendered); headless Services none.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use super::iptables::Iptables;
use crate::cluster::{Cluster, Protocol, TrafficPolicy};
use crate::ids::{EpId, NodeId, SpId};

/// kube-proxy's hash of a chain's key: base32 (RFC 4648, with its
/// alphabet) of SHA-256, first 16 characters.
pub fn chain_hash(key: &str) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let digest = Sha256::digest(key.as_bytes());
    let mut out = String::with_capacity(16);
    let (mut buf, mut bits) = (0u32, 0u32);
    for &b in digest.iter() {
        buf = (buf << 8) | b as u32;
        bits += 8;
        while bits >= 5 && out.len() < 16 {
            bits -= 5;
            out.push(ALPHABET[((buf >> bits) & 31) as usize] as char);
        }
        if out.len() == 16 {
            break;
        }
    }
    out
}

/// The protocol as kube-proxy writes it in rules and chain names.
pub(super) fn proto(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Sctp => "sctp",
    }
}

/// `namespace/name` or `namespace/name:port-name`: kube-proxy's
/// `ServicePortName`.
pub fn port_name(cl: &Cluster, sp: SpId) -> String {
    let p = &cl.service_ports[sp.index()];
    match &p.name {
        Some(n) => format!("{}:{n}", cl.service_ref(p.service)),
        None => cl.service_ref(p.service),
    }
}

/// A Service port's chain with prefix `KUBE-SVC`, `KUBE-SVL` or `KUBE-EXT`.
pub fn chain(cl: &Cluster, sp: SpId, prefix: &str) -> String {
    let p = &cl.service_ports[sp.index()];
    format!("{prefix}-{}", chain_hash(&format!("{}{}", port_name(cl, sp), proto(p.protocol))))
}

/// An endpoint's `KUBE-SEP-...` chain.
pub fn sep_chain(cl: &Cluster, sp: SpId, ep: EpId) -> String {
    let e = cl.service_ports[sp.index()].endpoints[ep.index()];
    sep_chain_of(cl, sp, cl.pods[e.pod.index()].ip, e.port)
}

/// The `KUBE-SEP-...` chain of `sp`'s endpoint at `ip`:`port`.
pub fn sep_chain_of(cl: &Cluster, sp: SpId, ip: crate::addr::Ipv4, port: u16) -> String {
    let p = &cl.service_ports[sp.index()];
    format!("KUBE-SEP-{}", chain_hash(&format!("{}{}{ip}:{port}", port_name(cl, sp), proto(p.protocol))))
}

/// The 0-based rules of KUBE-SERVICES on `node`, in its order: (Service
/// port, whether it is the load-balancer IP's rule).
pub fn kube_services(cl: &Cluster, ipt: &Iptables, node: NodeId) -> Vec<(SpId, bool)> {
    let mut rules: Vec<(u32, SpId, bool)> = Vec::new();
    for i in 0..cl.service_ports.len() {
        let sp = SpId::from_index(i);
        if let Some(at) = ipt.service_position(node, sp) {
            rules.push((at, sp, false));
        }
        if let Some(at) = ipt.lb_position(node, sp) {
            rules.push((at, sp, true));
        }
    }
    rules.sort_unstable_by_key(|r| r.0);
    rules.into_iter().map(|(_, sp, lb)| (sp, lb)).collect()
}

/// `iptables-save -t nat` of `node`.
pub fn render(cl: &Cluster, ipt: &Iptables, node: NodeId) -> String {
    let services = kube_services(cl, ipt, node);
    let mut nodeports: Vec<(u32, SpId)> = (0..cl.service_ports.len())
        .map(SpId::from_index)
        .filter_map(|sp| ipt.nodeport_position(node, sp).map(|at| (at, sp)))
        .collect();
    nodeports.sort_unstable();
    let with_rules: Vec<SpId> = (0..cl.service_ports.len())
        .map(SpId::from_index)
        .filter(|&sp| ipt.service_position(node, sp).is_some())
        .collect();
    let external = |sp: SpId| {
        let p = &cl.service_ports[sp.index()];
        p.node_port.is_some() || cl.services[p.service.index()].load_balancer_ip.is_some()
    };
    let mut chains = vec!["KUBE-SERVICES".to_string(), "KUBE-NODEPORTS".into(), "KUBE-POSTROUTING".into()];
    chains.push("KUBE-MARK-MASQ".into());
    let mut body = String::new();
    let mut rule = |r: String| {
        body.push_str(&r);
        body.push('\n');
    };
    rule("-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES".into());
    rule("-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES".into());
    rule("-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING".into());
    rule("-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000".into());
    rule("-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN".into());
    rule("-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0".into());
    rule("-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully".into());
    for &(sp, lb) in &services {
        let p = &cl.service_ports[sp.index()];
        let svc = &cl.services[p.service.index()];
        let internal_local = svc.internal_traffic_policy == TrafficPolicy::Local;
        if !lb && internal_local && p.local_endpoints(node).is_empty() {
            // kube-proxy drops it in the filter table; no nat rule.
            continue;
        }
        let (ip, what, to) = if lb {
            (svc.load_balancer_ip.expect("a load-balancer rule"), "loadbalancer IP", chain(cl, sp, "KUBE-EXT"))
        } else if internal_local {
            (svc.cluster_ip.expect("a ClusterIP rule"), "cluster IP", chain(cl, sp, "KUBE-SVL"))
        } else {
            (svc.cluster_ip.expect("a ClusterIP rule"), "cluster IP", chain(cl, sp, "KUBE-SVC"))
        };
        let pr = proto(p.protocol);
        rule(format!(
            "-A KUBE-SERVICES -d {ip}/32 -p {pr} -m comment --comment \"{} {what}\" -m {pr} --dport {} -j {to}",
            port_name(cl, sp),
            p.port
        ));
    }
    rule("-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS".into());
    for &(_, sp) in &nodeports {
        let p = &cl.service_ports[sp.index()];
        let pr = proto(p.protocol);
        rule(format!(
            "-A KUBE-NODEPORTS -p {pr} -m comment --comment \"{}\" -m {pr} --dport {} -j {}",
            port_name(cl, sp),
            p.node_port.expect("a node port"),
            chain(cl, sp, "KUBE-EXT")
        ));
    }
    for &sp in &with_rules {
        let p = &cl.service_ports[sp.index()];
        let svc = &cl.services[p.service.index()];
        let name = port_name(cl, sp);
        let (svc_chain, svl_chain) = (chain(cl, sp, "KUBE-SVC"), chain(cl, sp, "KUBE-SVL"));
        if external(sp) {
            let ext = chain(cl, sp, "KUBE-EXT");
            chains.push(ext.clone());
            match svc.external_traffic_policy {
                TrafficPolicy::Cluster => {
                    rule(format!("-A {ext} -m comment --comment \"masquerade traffic for {name} external destinations\" -j KUBE-MARK-MASQ"));
                    rule(format!("-A {ext} -j {svc_chain}"));
                }
                TrafficPolicy::Local => {
                    rule(format!("-A {ext} -m comment --comment \"masquerade LOCAL traffic for {name} external destinations\" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ"));
                    rule(format!("-A {ext} -m comment --comment \"route LOCAL traffic for {name} external destinations\" -m addrtype --src-type LOCAL -j {svc_chain}"));
                    if !p.local_endpoints(node).is_empty() {
                        rule(format!("-A {ext} -j {svl_chain}"));
                    }
                }
            }
        }
        let local = p.local_endpoints(node);
        // The chains kube-proxy creates: KUBE-SVC when some traffic uses
        // every endpoint, KUBE-SVL when some uses the node's and it has
        // any; KUBE-SEP for the endpoints those reach.
        let ext_cluster = external(sp) && svc.external_traffic_policy == TrafficPolicy::Cluster;
        let ext_local = external(sp) && svc.external_traffic_policy == TrafficPolicy::Local;
        let uses_cluster = svc.internal_traffic_policy == TrafficPolicy::Cluster || ext_cluster || ext_local;
        let uses_local = (svc.internal_traffic_policy == TrafficPolicy::Local || ext_local) && !local.is_empty();
        let all: Vec<EpId> = (0..p.endpoints.len()).map(EpId::from_index).collect();
        if uses_cluster {
            chains.push(svc_chain.clone());
            endpoint_rules(cl, sp, &svc_chain, &all, &mut rule);
        }
        if uses_local {
            chains.push(svl_chain.clone());
            endpoint_rules(cl, sp, &svl_chain, local, &mut rule);
        }
        let reached: Vec<EpId> = if uses_cluster { all.clone() } else { local.to_vec() };
        for &ep in &reached {
            let sep = sep_chain(cl, sp, ep);
            chains.push(sep.clone());
            let e = p.endpoints[ep.index()];
            let ip = cl.pods[e.pod.index()].ip;
            let pr = proto(p.protocol);
            rule(format!("-A {sep} -s {ip}/32 -m comment --comment \"{name}\" -j KUBE-MARK-MASQ"));
            let recent = if svc.affinity_timeout_ns.is_some() {
                format!(" -m recent --set --name {sep} --mask 255.255.255.255 --rsource")
            } else {
                String::new()
            };
            // kube-proxy appends the `recent` match before the protocol's.
            rule(format!(
                "-A {sep} -p {pr} -m comment --comment \"{name}\"{recent} -m {pr} -j DNAT --to-destination {ip}:{}",
                e.port
            ));
        }
    }
    let mut out = String::from("# Generated by emu (kube-proxy iptables mode)\n*nat\n");
    for c in ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"] {
        let _ = writeln!(out, ":{c} ACCEPT [0:0]");
    }
    chains.sort();
    chains.dedup();
    for c in &chains {
        let _ = writeln!(out, ":{c} - [0:0]");
    }
    out.push_str(&body);
    out.push_str("COMMIT\n");
    out
}

/// A `statistic` probability as `iptables-save` prints it back:
/// kube-proxy writes 10 decimals, the xt_statistic match stores
/// `round(p x 2^31)` and prints that over 2^31 with 11 (1/3 is written
/// 0.3333333333 and saved as 0.33333333349).
pub fn probability(p: f64) -> String {
    let written: f64 = format!("{p:.10}").parse().expect("a number");
    let stored = (written * 2_147_483_648.0).round();
    format!("{:.11}", stored / 2_147_483_648.0)
}

/// A KUBE-SVC / KUBE-SVL chain over `eps`: with session affinity one
/// `recent --rcheck` rule per endpoint first, then rule `i` of `n` jumps
/// to its KUBE-SEP with probability 1/(n-i), the last unconditionally (the
/// choice the cost model's `i + 1` rules stand for).
fn endpoint_rules(cl: &Cluster, sp: SpId, chain: &str, eps: &[EpId], rule: &mut impl FnMut(String)) {
    let p = &cl.service_ports[sp.index()];
    let svc = &cl.services[p.service.index()];
    let name = port_name(cl, sp);
    if let Some(t) = svc.affinity_timeout_ns {
        for &ep in eps {
            let sep = sep_chain(cl, sp, ep);
            let e = p.endpoints[ep.index()];
            let ip = cl.pods[e.pod.index()].ip;
            rule(format!(
                "-A {chain} -m comment --comment \"{name} -> {ip}:{}\" -m recent --rcheck --seconds {} --reap --name {sep} --mask 255.255.255.255 --rsource -j {sep}",
                e.port,
                t / 1_000_000_000
            ));
        }
    }
    let n = eps.len();
    for (i, &ep) in eps.iter().enumerate() {
        let sep = sep_chain(cl, sp, ep);
        let e = p.endpoints[ep.index()];
        let ip = cl.pods[e.pod.index()].ip;
        let stat = if i + 1 < n {
            format!(" -m statistic --mode random --probability {}", probability(1.0 / (n - i) as f64))
        } else {
            String::new()
        };
        rule(format!("-A {chain} -m comment --comment \"{name} -> {ip}:{}\"{stat} -j {sep}", e.port));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use emu_engine::rng::{Domain, Stream};

    use super::*;
    use crate::addr::Ipv4;
    use crate::cluster::{build, testing, ServiceType};
    use crate::proxy::iptables::{IptablesParams, RuleOrder};
    use crate::proxy::{Candidates, Entry, ProxyModel, Query};

    #[test]
    fn chain_names_are_kube_proxy_s() {
        // The names every kubeadm cluster shows for these Service ports.
        assert_eq!(chain_hash("default/kubernetes:httpstcp"), "NPX46M4PTMTKRN6Y");
        assert_eq!(chain_hash("kube-system/kube-dns:dnsudp"), "TCOU7JCQXEZGVUNU");
        assert_eq!(chain_hash("kube-system/kube-dns:dns-tcptcp"), "ERIFXISQEP7F7OF4");
        assert_eq!(chain_hash("kube-system/kube-dns:metricstcp"), "JD5MR3NA4I4DYORP");
    }

    /// Three nodes; ClusterIP, NodePort (Cluster and Local), LoadBalancer
    /// and ClientIP-affinity Services over 2-5 endpoints.
    fn cluster() -> Cluster {
        let mut s = testing::spec(3);
        for (i, n) in [2u32, 3, 5, 4, 3, 6].into_iter().enumerate() {
            s.pods.push(testing::pods(&format!("app{i}"), n, 8080));
        }
        let mut svc = |name: &str, app: &str, kind, local: bool, affinity: bool| {
            let mut v = testing::service(name, app, 8080);
            v.kind = kind;
            if local {
                v.external_traffic_policy = TrafficPolicy::Local;
            }
            if affinity {
                v.affinity_timeout_s = Some(600);
            }
            s.services.push(v);
        };
        svc("plain", "app0", ServiceType::ClusterIp, false, false);
        svc("np", "app1", ServiceType::NodePort, false, false);
        svc("np-local", "app2", ServiceType::NodePort, true, false);
        svc("lb", "app3", ServiceType::LoadBalancer, false, false);
        svc("sticky", "app4", ServiceType::ClusterIp, false, true);
        // internalTrafficPolicy Local, with two endpoints on every node.
        let mut itp = testing::service("itp", "app5", 8080);
        itp.internal_traffic_policy = TrafficPolicy::Local;
        s.services.push(itp);
        build(&s, 1).unwrap()
    }

    /// Rules an external-or-pod first packet to (`dst`, `dport`) passes in
    /// the rendered nat table, taking the jump to `sep` in KUBE-SVC/SVL.
    fn walk(text: &str, dst: Ipv4, dport: u16, pr: &str, local_dst: bool, sep: &str) -> u32 {
        let mut chains: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for l in text.lines().filter_map(|l| l.strip_prefix("-A ")) {
            let (c, rest) = l.split_once(' ').unwrap();
            chains.entry(c).or_default().push(rest);
        }
        let target = |r: &str| r.rsplit_once("-j ").unwrap().1.split(' ').next().unwrap().to_string();
        let (mut at, mut passed) = ("KUBE-SERVICES".to_string(), 0);
        'chains: loop {
            for r in &chains[at.as_str()] {
                passed += 1;
                let t = target(r);
                let hit = if r.starts_with("-d ") {
                    r.contains(&format!("-d {dst}/32 -p {pr} ")) && r.contains(&format!("--dport {dport} "))
                } else if r.contains("--dst-type LOCAL") {
                    local_dst
                } else if at == "KUBE-NODEPORTS" {
                    r.contains(&format!("-p {pr} ")) && r.contains(&format!("--dport {dport} "))
                } else if r.contains("--src-type LOCAL") || r.contains("--rcheck") || r.starts_with("-s ") {
                    false
                } else if t.starts_with("KUBE-SEP-") {
                    t == sep
                } else {
                    true
                };
                match (hit, t.as_str()) {
                    (true, "DNAT") => return passed,
                    (true, "KUBE-MARK-MASQ") | (false, _) => {}
                    (true, next) => {
                        at = next.to_string();
                        continue 'chains;
                    }
                }
            }
            panic!("fell off {at} looking for {sep} ({dst}:{dport}/{pr}): {:?}", chains[at.as_str()]);
        }
    }

    #[test]
    fn the_charged_rules_are_the_rendered_rules_a_first_packet_passes() {
        let cl = cluster();
        let mut checked = 0;
        for order in [RuleOrder::Random, RuleOrder::Declaration] {
            let mut ipt = Iptables::new(&cl, IptablesParams { rule_order: order, ..Default::default() }, 5);
            let mut rng = Stream::new(3, Domain(1), 0);
            for node in (0..3).map(NodeId::from_index) {
                let text = render(&cl, &ipt, node);
                let node_ip = cl.nodes[node.index()].ip;
                for i in 0..cl.service_ports.len() {
                    let sp = SpId::from_index(i);
                    let p = &cl.service_ports[i];
                    let svc = &cl.services[p.service.index()];
                    let Some(vip) = svc.cluster_ip.filter(|_| !p.endpoints.is_empty()) else { continue };
                    let mut entries = vec![(Entry::ClusterIp, vip, p.port, false)];
                    if let Some(np) = p.node_port {
                        entries.push((Entry::NodePort, node_ip, np, true));
                    }
                    if let Some(lb) = svc.load_balancer_ip {
                        entries.push((Entry::LoadBalancer, lb, p.port, false));
                    }
                    for (entry, dst, dport, local_dst) in entries {
                        let local = if entry.external() {
                            svc.external_traffic_policy == TrafficPolicy::Local
                        } else {
                            svc.internal_traffic_policy == TrafficPolicy::Local
                        };
                        let cands = if local {
                            Candidates::Subset(p.local_endpoints(node))
                        } else {
                            Candidates::All(p.endpoints.len() as u32)
                        };
                        if cands.is_empty() {
                            continue;
                        }
                        for _ in 0..8 {
                            let q = Query {
                                node,
                                sp,
                                entry,
                                candidates: cands,
                                client_ip: Ipv4(0xC612_0001),
                                dest_ip: dst,
                                affinity: svc.affinity_timeout_ns.is_some(),
                                now_ns: 0,
                                extra: &[],
                                version: 0,
                            };
                            let d = ipt.pick(&cl, &q, &mut rng).unwrap();
                            let sep = sep_chain(&cl, sp, d.endpoint);
                            let want = walk(&text, dst, dport, proto(p.protocol), local_dst, &sep);
                            assert_eq!(d.cost.entries, want, "{} {entry:?} on {node:?}", port_name(&cl, sp));
                            assert_eq!(d.cost.lookup_ns, want as u64 * ipt.params().rule_ns);
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert!(checked > 300, "{checked}");
    }

    #[test]
    fn every_node_has_its_own_kube_services_order_and_the_same_chains() {
        let cl = cluster();
        let ipt = Iptables::new(&cl, IptablesParams::default(), 5);
        let (a, b) = (render(&cl, &ipt, NodeId::new(0)), render(&cl, &ipt, NodeId::new(1)));
        let services =
            |t: &str| t.lines().filter(|l| l.starts_with("-A KUBE-SERVICES")).map(str::to_string).collect::<Vec<_>>();
        let (mut sa, mut sb) = (services(&a), services(&b));
        assert_eq!(
            sa.len(),
            9 + 1 + 1,
            "9 ClusterIP rules (kube-dns has 3), 1 load-balancer IP rule, the node-port jump"
        );
        assert!(a.contains("\"default/itp cluster IP\" -m tcp --dport 80 -j KUBE-SVL-"), "Local internal traffic");
        assert!(sa.last().unwrap().contains("KUBE-NODEPORTS"));
        sa.sort();
        sb.sort();
        assert_eq!(sa, sb, "the same rules, in each node's order");
        // A 3-endpoint chain: 1/3, 1/2, then the last unconditional.
        assert!(a.contains("--probability 0.33333333349 -j KUBE-SEP-"));
        assert!(a.contains("--probability 0.50000000000 -j KUBE-SEP-"));
        assert_eq!(probability(0.25), "0.25000000000");
        assert_eq!(probability(0.2), "0.20000000019");
        assert!(a.contains(&format!(":{} - [0:0]", chain(&cl, SpId::new(0), "KUBE-SVC"))));
        assert!(a.contains("-m recent --rcheck --seconds 600 --reap"));
    }
}
