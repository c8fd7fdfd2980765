//! `emu trace`: the seed's four paths, traced hop by hop from the run
//! itself. For each: the interfaces the SYN crosses, in order, on which
//! nodes; the addresses before and after kube-proxy's NAT and back on the
//! reply; and the steps' times, which follow one another without a gap
//! and add up to the request's latency.

use serde_json::Value;

use crate::util::{emu, emu_in, root, stderr};

fn trace(file: &str, flow: &str, extra: &[&str]) -> Value {
    let path = root().join(file);
    let mut args = vec!["trace", path.to_str().unwrap(), "--flow", flow, "--format", "json"];
    args.extend_from_slice(extra);
    let o = emu(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).expect("emu trace --format json prints JSON")
}

fn steps(t: &Value) -> &Vec<Value> {
    t["steps"].as_array().unwrap()
}

fn u(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}"))
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or("")
}

/// Asserts the steps with a duration tile the request's time exactly, and
/// returns the latency.
fn times_add_up(t: &Value) -> u64 {
    assert_eq!(s(t, "outcome"), "completed", "{t}");
    let latency = u(t, "latency_ns");
    let mut at = u(t, "start_ns");
    for st in steps(t) {
        let timed = matches!(s(st, "type"), "hop" | "server" | "wait");
        if timed {
            assert_eq!(u(st, "at_ns"), at, "a gap or an overlap before {st}");
            at += u(st, "ns");
        } else {
            assert_eq!(u(st, "ns"), 0);
            assert!(u(st, "at_ns") <= at + 1, "an event out of order: {st}");
        }
        if s(st, "type") == "hop" {
            let parts = u(st, "queue_ns") + u(st, "service_ns") + u(st, "work_ns") + u(st, "latency_ns");
            assert_eq!(parts, u(st, "ns"), "{st}");
        }
    }
    assert_eq!(at - u(t, "start_ns"), latency);
    assert_eq!(u(t, "end_ns") - u(t, "start_ns"), latency);
    let sum: u64 = steps(t).iter().map(|st| u(st, "ns")).sum();
    assert_eq!(sum, latency);
    latency
}

/// The hops of the message sent by the `nth` send event whose text starts
/// with `what` (`SYN`, `request`, ...).
fn message<'a>(t: &'a Value, what: &str) -> Vec<&'a Value> {
    let all = steps(t);
    let start = all
        .iter()
        .position(|st| s(st, "kind") == "send" && s(st, "text").starts_with(&format!("{what} ")))
        .unwrap_or_else(|| panic!("no {what} in {t}"));
    all[start + 1..]
        .iter()
        .take_while(|st| s(st, "kind") != "send" && s(st, "type") != "server")
        .filter(|st| s(st, "type") == "hop")
        .collect()
}

/// The interfaces crossed, `node:iface` (a pod's host-side veth name as `veth*`).
fn ifaces(hops: &[&Value]) -> Vec<String> {
    hops.iter()
        .map(|h| {
            let iface = s(h, "iface")
                .split(' ')
                .map(|w| if w.starts_with("veth") && w.len() == 12 { "veth*" } else { w })
                .collect::<Vec<_>>()
                .join(" ");
            format!("{}:{iface}", h["node"].as_str().unwrap_or("-"))
        })
        .collect()
}

fn addrs(h: &Value) -> (String, String) {
    (s(h, "src").to_string(), s(h, "dst").to_string())
}

fn ip(sock: &str) -> &str {
    sock.rsplit_once(':').unwrap().0
}

const PATHS: &str = "workloads/seed/paths.toml";

#[test]
fn container_to_container_stays_on_the_pods_loopback() {
    let t = trace(PATHS, "container-to-container", &[]);
    times_add_up(&t);
    let syn = message(&t, "SYN");
    assert_eq!(ifaces(&syn), ["node-0:socket", "node-0:lo", "node-0:socket"]);
    for h in &syn {
        let (src, dst) = addrs(h);
        assert_eq!((ip(&src), dst.as_str()), ("127.0.0.1", "127.0.0.1:80"));
        assert_eq!(s(h, "pod"), "default/mypod");
    }
    assert!(!steps(&t).iter().any(|st| matches!(s(st, "kind"), "dnat" | "conntrack")), "no netfilter on lo");
}

#[test]
fn pod_to_pod_crosses_veth_bridge_and_eth0_with_no_nat() {
    let t = trace(PATHS, "pod-to-pod-same-node", &[]);
    times_add_up(&t);
    let syn = message(&t, "SYN");
    assert_eq!(
        ifaces(&syn),
        ["node-0:socket", "node-0:eth0 > veth*", "node-0:cpu", "node-0:cbr0", "node-0:veth* > eth0", "node-0:socket"]
    );
    let t = trace(PATHS, "pod-to-pod-cross-node", &[]);
    times_add_up(&t);
    let syn = message(&t, "SYN");
    assert_eq!(
        ifaces(&syn),
        [
            "node-0:socket",
            "node-0:eth0 > veth*",
            "node-0:cpu",
            "node-0:cbr0",
            "node-0:eth0",
            "node-0:underlay",
            "node-1:eth0",
            "node-1:cpu",
            "node-1:cbr0",
            "node-1:veth* > eth0",
            "node-1:socket",
        ]
    );
    assert_eq!(syn[5]["to_node"], "node-1");
    // No NAT between pods: the same addresses at every hop, both ways.
    for h in &syn {
        assert_eq!(addrs(h).1, "10.244.1.15:8080");
        assert_eq!(ip(&addrs(h).0), "10.244.0.10");
    }
    let back = message(&t, "SYN-ACK");
    assert_eq!(back.len(), syn.len());
    assert!(back.iter().all(|h| ip(&addrs(h).0) == "10.244.1.15" && ip(&addrs(h).1) == "10.244.0.10"));
    assert!(!steps(&t).iter().any(|st| s(st, "kind") == "dnat"));
    // A conntrack entry on each node for the SYN, matched by the reply.
    let ct: Vec<&str> = steps(&t).iter().filter(|st| s(st, "kind") == "conntrack").map(|st| s(st, "text")).collect();
    assert!(ct[0].starts_with("new entry tcp src=10.244.0.10 dst=10.244.1.15"), "{ct:?}");
    assert!(ct[1].starts_with("new entry"), "{ct:?}");
    assert!(ct[2].starts_with("reply matches entry"), "{ct:?}");
}

#[test]
fn pod_to_service_resolves_then_is_dnatted_on_the_client_node_and_un_natted_back() {
    let t = trace(PATHS, "pod-to-service", &[]);
    let latency = times_add_up(&t);
    // DNS first: the search path's first candidate answers (glibc asks
    // for A and AAAA together; the AAAA answer is empty).
    let dns: Vec<&str> = steps(&t).iter().filter(|st| s(st, "kind") == "dns").map(|st| s(st, "text")).collect();
    assert!(
        dns[0].starts_with("query A and AAAA myservice.default.svc.cluster.local. (candidate 1 of the search path)"),
        "{dns:?}"
    );
    assert!(dns[1].starts_with("answer myservice.default.svc.cluster.local. A 10.96."), "{dns:?}");
    assert!(dns[1].ends_with("; AAAA: none (NOERROR, NODATA: an IPv4 cluster)"), "{dns:?}");
    let vip = dns[1].split(' ').nth(3).unwrap().trim_end_matches(';').to_string();
    // The query itself goes to kube-dns's ClusterIP and is DNATted to CoreDNS.
    let query = message(&t, "DNS query");
    assert_eq!(addrs(query[0]).1, "10.96.0.10:53");
    assert!(addrs(query.last().unwrap()).1.ends_with(":53") && !addrs(query.last().unwrap()).1.starts_with("10.96."));
    // The SYN: to the ClusterIP until the client node's netfilter, then to
    // the endpoint; the proxy says which chains it passed.
    let syn = message(&t, "SYN");
    let cpu = syn.iter().position(|h| s(h, "kind") == "cpu").unwrap();
    assert_eq!(s(syn[cpu], "node"), "node-0");
    for h in &syn[..=cpu] {
        assert_eq!(addrs(h).1, format!("{vip}:80"), "{h}");
    }
    let endpoint = addrs(syn.last().unwrap()).1;
    assert!(endpoint.ends_with(":8080") && endpoint.starts_with("10.244."), "{endpoint}");
    for h in &syn[cpu + 1..] {
        assert_eq!(addrs(h).1, endpoint);
        assert_eq!(ip(&addrs(h).0), "10.244.0.10", "pod traffic keeps its source");
    }
    let dnat = steps(&t).iter().find(|st| s(st, "kind") == "dnat" && s(st, "text").contains(":80 >")).unwrap();
    assert_eq!(s(dnat, "text"), format!("dst {vip}:80 > {endpoint}"));
    let proxy = steps(&t).iter().filter(|st| s(st, "kind") == "proxy").nth(1).unwrap();
    assert!(s(proxy, "text").contains("KUBE-SVC-") && s(proxy, "text").contains("KUBE-SEP-"), "{proxy}");
    // The reply leaves the server from the endpoint and reaches the client
    // from the ClusterIP.
    let response = message(&t, "response");
    assert_eq!(addrs(response[0]).0, endpoint);
    assert_eq!(addrs(response.last().unwrap()).0, format!("{vip}:80"));
    assert!(steps(&t).iter().any(|st| s(st, "kind") == "reverse_nat"));
    // Conntrack names each node's entry by the packet as it reached that
    // node: the original tuple where it was translated, the translated one
    // on the server's node.
    let ct: Vec<(&str, &str)> = steps(&t)
        .iter()
        .filter(|st| s(st, "kind") == "conntrack" && s(st, "text").starts_with("new entry tcp"))
        .map(|st| (s(st, "node"), s(st, "text")))
        .collect();
    assert_eq!(ct.len(), 2, "{ct:?}");
    assert!(ct[0].1.contains(&format!("dst={vip} ")) && ct[0].1.ends_with("dport=80"), "{ct:?}");
    let (eip, eport) = endpoint.rsplit_once(':').unwrap();
    assert!(ct[1].1.contains(&format!("dst={eip} ")) && ct[1].1.ends_with(&format!("dport={eport}")), "{ct:?}");
    assert_ne!(ct[0].0, ct[1].0);
    // The CPU hop that rewrote the SYN carries the first-packet work.
    assert!(u(syn[cpu], "work_ns") > 8_000, "{}", syn[cpu]);
    assert!(latency > 300_000);
}

#[test]
fn internet_to_node_port_is_dnatted_and_masqueraded_at_the_entry_node() {
    let t = trace("workloads/seed/internet-to-service.toml", "internet-to-nodeport", &[]);
    times_add_up(&t);
    let syn = message(&t, "SYN");
    let names = ifaces(&syn);
    assert_eq!(names[0], "-:client socket");
    assert_eq!(names[1].split(':').nth(1).unwrap(), "client > eth0");
    let cpu = syn.iter().position(|h| s(h, "kind") == "cpu").unwrap();
    let entry = s(syn[cpu], "node").to_string();
    let (src0, dst0) = addrs(syn[0]);
    assert!(ip(&src0).starts_with("198.18."), "{src0}");
    assert!(dst0.ends_with(":30007") && dst0.starts_with("192.168."), "{dst0}");
    let (src1, dst1) = addrs(syn.last().unwrap());
    assert!(dst1.ends_with(":8080") && dst1.starts_with("10.244."), "{dst1}");
    // externalTrafficPolicy Cluster: MASQUERADE to the node's address.
    assert!(ip(&src1).starts_with("192.168.") || ip(&src1).ends_with(".1"), "{src1}");
    // kube-proxy's path for a node port: KUBE-NODEPORTS, the port's
    // KUBE-EXT chain, KUBE-SVC, the endpoint's KUBE-SEP.
    let proxy = s(steps(&t).iter().find(|st| s(st, "kind") == "proxy").unwrap(), "text").to_string();
    let chains: Vec<&str> =
        proxy.split(' ').filter(|w| w.starts_with("KUBE-")).map(|w| w.trim_end_matches(';')).collect();
    assert_eq!(chains.len(), 4, "{proxy}");
    assert_eq!(chains[0], "KUBE-NODEPORTS");
    assert!(
        chains[1].starts_with("KUBE-EXT-") && chains[2].starts_with("KUBE-SVC-") && chains[3].starts_with("KUBE-SEP-")
    );
    assert_eq!(chains[1][9..], chains[2][9..], "one Service port's chains share its hash");
    let snat = steps(&t).iter().find(|st| s(st, "kind") == "snat").unwrap();
    assert_eq!(s(snat, "node"), entry);
    // The reply is rewritten back on the entry node and leaves it from the
    // node port to the client.
    let response = message(&t, "response");
    let (src, dst) = addrs(response.last().unwrap());
    assert_eq!((src, dst), (dst0.clone(), src0.clone()));
    let back = steps(&t).iter().rfind(|st| s(st, "kind") == "reverse_nat").unwrap();
    assert_eq!(s(back, "node"), entry);
}

#[test]
fn text_format_lists_every_step_and_a_wrong_flow_is_named() {
    let path = root().join(PATHS);
    let o = emu(&["trace", path.to_str().unwrap(), "--flow", "pod-to-service", "--request", "3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.starts_with("trace of request 3 of flow `pod-to-service`"), "{text}");
    let t = trace(PATHS, "pod-to-service", &["--request", "3"]);
    assert_eq!(text.lines().filter(|l| l.contains(" dnat ") || l.contains(" dnat  ")).count(), {
        steps(&t).iter().filter(|st| s(st, "kind") == "dnat").count()
    });
    let last = text.lines().last().unwrap();
    let lat = u(&t, "latency_ns");
    assert!(last.ends_with(&format!("latency of {}.{:03} us", lat / 1000, lat % 1000)), "{last}");
    let o = emu(&["trace", path.to_str().unwrap(), "--flow", "nope"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--flow nope: no such flow") && stderr(&o).contains("pod-to-service"));
    let o = emu(&["trace", path.to_str().unwrap(), "--flow", "pod-to-service", "--request", "20000"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("issued fewer than 20000"), "{}", stderr(&o));
}

#[test]
fn the_readme_shows_what_emu_trace_prints() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let block: Vec<&str> = readme
        .lines()
        .skip_while(|l| !l.starts_with("    trace of request 1 of flow `pod-to-service`"))
        .take_while(|l| l.starts_with("    "))
        .map(|l| &l[4..])
        .collect();
    assert!(block.len() > 10, "README's trace example");
    let o = emu_in(&root(), &["trace", "workloads/seed/pod-to-service.toml", "--flow", "pod-to-service"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    for l in block.iter().map(|l| l.trim_end()).filter(|l| l.trim() != "...") {
        let found = match l.strip_suffix("...") {
            Some(head) => lines.iter().any(|x| x.starts_with(head)),
            None => lines.contains(&l),
        };
        assert!(found, "README line not in emu trace's output: {l}");
    }
}

/// A scenario file in a temporary directory.
fn scenario(text: &str) -> (tempfile::TempDir, String) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("s.toml");
    std::fs::write(&path, text).unwrap();
    (tmp, path.to_str().unwrap().to_string())
}

#[test]
fn a_request_that_times_out_in_a_server_queue_is_traced_to_its_timeout() {
    // One worker busy 50 ms per request, a 20 ms timeout: request 2 waits
    // behind request 1 and gives up while queued.
    let (_t, path) = scenario(
        r#"
seed = 1
[cluster]
nodes = 2
[[pods]]
name = "client"
node = "node-0"
[[pods]]
name = "web"
node = "node-1"
labels = { app = "web" }
ports = [8080]
[[servers]]
selector = { app = "web" }
port = 8080
service_time = "const(50ms)"
concurrency = 1
[[flows]]
name = "f"
from = "client"
to = "http://10.244.1.2:8080"
rate = 1000
requests = 3
timeout = "20ms"
"#,
    );
    let o = emu(&["trace", &path, "--flow", "f", "--request", "2", "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let t: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((s(&t, "outcome"), s(&t, "failure")), ("failed", "timeout"), "{t}");
    let time = u(&t, "end_ns") - u(&t, "start_ns");
    assert_eq!(time, 20_000_000);
    let mut at = u(&t, "start_ns");
    for st in steps(&t).iter().filter(|st| matches!(s(st, "type"), "hop" | "server" | "wait")) {
        assert_eq!(u(st, "at_ns"), at, "a gap before {st}");
        at += u(st, "ns");
    }
    assert_eq!(at, u(&t, "end_ns"), "the steps tile the request's time");
    let server = steps(&t).iter().find(|st| s(st, "type") == "server").unwrap();
    assert_eq!(u(server, "service_ns"), 0, "never served: {server}");
    assert!(u(server, "queue_ns") > 19_000_000, "{server}");
    let last = steps(&t).last().unwrap();
    assert_eq!((s(last, "kind"), s(last, "text")), ("failed", "timeout after 20000000 ns"));
}
