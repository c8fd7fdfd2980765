//! A node's interfaces and routes at time 0, as `ip -brief address` and
//! `ip route` print them on a real node of each CNI mode (`emu rules
//! --links`), IPv4 only:
//!
//! - routed (kubenet, flannel host-gw): `lo`, `eth0` on the node network,
//!   the `cbr0` bridge with the pod CIDR's first address, one host-side
//!   `veth...@if2` per pod; a route to each other node's pod CIDR via that
//!   node's address;
//! - VXLAN (flannel): flannel's `cni0` bridge, and `flannel.1` holding the pod CIDR's
//!   network address as /32, and the other nodes' pod CIDRs via their
//!   `flannel.1` addresses, `onlink`;
//! - eBPF (Cilium, native routing): `cilium_host` with the router address
//!   instead of the bridge, one `lxc...@if2` per pod, native routes as in
//!   routed mode.
//!
//! No default route is shown (emu models no gateway).
//!
//! Interface names for pods are stable hashes of the pod's namespace and
//! name (real ones are random).

use std::fmt::Write as _;

use super::Cni;
use crate::addr::Cidr;
use crate::cluster::Cluster;
use crate::ids::NodeId;

fn brief(out: &mut String, name: &str, state: &str, addrs: &[String]) {
    let _ = write!(out, "{name:<16} {state:<14} ");
    for a in addrs {
        let _ = write!(out, "{a} ");
    }
    out.push('\n');
}

/// A pod's host-side interface: `prefix` and 8 hex digits of a hash of
/// `namespace/name`.
pub(crate) fn pod_if(prefix: &str, key: &str) -> String {
    let h = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3));
    format!("{prefix}{:08x}@if2", emu_engine::rng::mix64(h) as u32)
}

/// `ip -brief address` on `node`.
pub fn addresses(cl: &Cluster, cni: Cni, node: NodeId) -> String {
    let n = &cl.nodes[node.index()];
    let mut out = String::new();
    brief(&mut out, "lo", "UNKNOWN", &["127.0.0.1/8".into()]);
    brief(&mut out, "eth0", "UP", &[format!("{}/{}", n.ip, cl.node_network.prefix)]);
    let cidr = n.pod_cidr.prefix;
    match cni {
        Cni::Routed => brief(&mut out, "cbr0", "UP", &[format!("{}/{cidr}", n.bridge_ip)]),
        Cni::Vxlan => brief(&mut out, "cni0", "UP", &[format!("{}/{cidr}", n.bridge_ip)]),
        Cni::Ebpf => {
            brief(&mut out, "cilium_net@cilium_host", "UP", &[]);
            brief(&mut out, "cilium_host@cilium_net", "UP", &[format!("{}/32", n.bridge_ip)]);
        }
    }
    if cni == Cni::Vxlan {
        brief(&mut out, "flannel.1", "UNKNOWN", &[format!("{}/32", n.pod_cidr.base)]);
    }
    let prefix = if cni == Cni::Ebpf { "lxc" } else { "veth" };
    // hostNetwork pods have no interface of their own.
    for p in cl.pods.iter().filter(|p| p.node == node && !p.host_network) {
        brief(&mut out, &pod_if(prefix, &format!("{}/{}", cl.namespaces[p.namespace as usize], p.name)), "UP", &[]);
    }
    out
}

/// `ip route` on `node`, in address order as the kernel lists its main
/// table.
pub fn routes(cl: &Cluster, cni: Cni, node: NodeId) -> String {
    let me = &cl.nodes[node.index()];
    let mut rows: Vec<(Cidr, String)> = Vec::new();
    let net = cl.node_network;
    rows.push((net, format!("{net} dev eth0 proto kernel scope link src {}", me.ip)));
    for (i, n) in cl.nodes.iter().enumerate() {
        let c = n.pod_cidr;
        let line = if i == node.index() {
            match cni {
                Cni::Routed => format!("{c} dev cbr0 proto kernel scope link src {}", me.bridge_ip),
                Cni::Vxlan => format!("{c} dev cni0 proto kernel scope link src {}", me.bridge_ip),
                Cni::Ebpf => format!("{c} via {ip} dev cilium_host proto kernel src {ip}", ip = me.bridge_ip),
            }
        } else {
            match cni {
                Cni::Routed | Cni::Ebpf => format!("{c} via {} dev eth0", n.ip),
                Cni::Vxlan => format!("{c} via {} dev flannel.1 onlink", n.pod_cidr.base),
            }
        };
        rows.push((c, line));
    }
    if cni == Cni::Ebpf {
        let ip = me.bridge_ip;
        rows.push((Cidr { base: ip, prefix: 32 }, format!("{ip} dev cilium_host proto kernel scope link")));
    }
    rows.sort_by_key(|(c, _)| (c.base.0, c.prefix));
    let mut out = String::new();
    for (_, l) in rows {
        out.push_str(&l);
        out.push_str(" \n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{build, testing};

    #[test]
    fn a_routed_node_has_its_bridge_its_pods_and_a_route_per_other_node() {
        let mut s = testing::spec(3);
        s.pods.push(testing::pods("web", 6, 8080));
        let cl = build(&s, 1).unwrap();
        let a = addresses(&cl, Cni::Routed, NodeId::new(1));
        assert!(a.starts_with("lo               UNKNOWN        127.0.0.1/8 \n"), "{a}");
        assert!(a.contains("eth0             UP             192.168.0.2/16 \n"), "{a}");
        assert!(a.contains("cbr0             UP             10.244.1.1/24 \n"), "{a}");
        let pods_here = cl.pods.iter().filter(|p| p.node == NodeId::new(1)).count();
        assert_eq!(a.matches("veth").count(), pods_here);
        let r = routes(&cl, Cni::Routed, NodeId::new(1));
        assert_eq!(r.lines().count(), 1 + 3);
        assert!(r.contains("10.244.0.0/24 via 192.168.0.1 dev eth0 \n"), "{r}");
        assert!(r.contains("10.244.1.0/24 dev cbr0 proto kernel scope link src 10.244.1.1 \n"), "{r}");
        let v = routes(&cl, Cni::Vxlan, NodeId::new(1));
        assert!(v.contains("10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink \n"), "{v}");
        assert!(addresses(&cl, Cni::Ebpf, NodeId::new(0)).contains("cilium_host"));
    }
}
