//! Who sends a flow's requests (`from`) and where they go (`to`).

use emu_models::addr::Ipv4;
use emu_models::cluster::Cluster;
use emu_models::ids::PodId;
use emu_models::traffic::{Client, Target};

use super::schema::{FlowToml, FromToml};
use super::Ctx;

/// Pods of pod or template `name` in namespace `ns`.
fn pods_named(cluster: &Cluster, templates: &[(String, String, u32)], ns: &str, name: &str) -> Vec<PodId> {
    let Some(nsi) = cluster.namespace(ns) else {
        return vec![];
    };
    if let Some(p) = cluster.pod_by_name(nsi, name) {
        return vec![p];
    }
    templates
        .iter()
        .filter(|(tns, tname, r)| tns == ns && tname == name && *r > 1)
        .flat_map(|(_, _, r)| (0..*r).filter_map(|i| cluster.pod_by_name(nsi, &format!("{name}-{i}"))))
        .collect()
}

pub(super) fn resolve_from(
    ctx: &Ctx,
    key: &str,
    from: &FromToml,
    cluster: &Cluster,
    templates: &[(String, String, u32)],
    f: &FlowToml,
) -> Result<Client, String> {
    let k = format!("{key}.from");
    match from {
        FromToml::Name(n) if n == "external" => {
            let clients = f.clients.or(f.concurrency).unwrap_or(1);
            if let Some(c) = f.concurrency {
                if clients > c {
                    return Err(ctx.err(
                        &format!("{key}.clients"),
                        format!(
                            "{clients} client addresses but only {c} closed-loop clients: each client is one address"
                        ),
                    ));
                }
            }
            Ok(Client::External(clients))
        }
        _ if f.clients.is_some() => Err(ctx.err(
            &format!("{key}.clients"),
            "`clients` sets the number of external client addresses: it needs from = \"external\"",
        )),
        FromToml::Name(n) => {
            let pods = pods_named(cluster, templates, "default", n);
            if pods.is_empty() {
                return Err(ctx.err(&k, format!("no pod or pod template `{n}` in namespace `default` (write \"external\" for clients outside the cluster)")));
            }
            Ok(Client::Pods(pods.into()))
        }
        FromToml::Table(t) => {
            let nsi = cluster
                .namespace(&t.namespace)
                .ok_or_else(|| ctx.err(&k, format!("no namespace `{}`", t.namespace)))?;
            let pods = match (&t.pod, &t.selector) {
                (Some(p), None) => {
                    let pods = pods_named(cluster, templates, &t.namespace, p);
                    if pods.is_empty() {
                        return Err(ctx.err(
                            &format!("{k}.pod"),
                            format!("no pod or pod template `{p}` in namespace `{}`", t.namespace),
                        ));
                    }
                    if let Some(c) = &t.container {
                        if let Some(&bad) = pods.iter().find(|&&q| !cluster.pods[q.index()].containers.contains(c)) {
                            let p = &cluster.pods[bad.index()].name;
                            return Err(ctx.err(&format!("{k}.container"), format!("pod `{p}` has no container `{c}`")));
                        }
                    }
                    pods
                }
                (None, Some(sel)) => {
                    let key = (nsi, sel.clone());
                    if let Some(shared) = ctx.clients.borrow().get(&key) {
                        return Ok(Client::Pods(shared.clone()));
                    }
                    let pods: std::sync::Arc<[PodId]> = cluster.select(nsi, sel).into();
                    if pods.is_empty() {
                        return Err(ctx.err(&format!("{k}.selector"), "matches no pod"));
                    }
                    ctx.clients.borrow_mut().insert(key, pods.clone());
                    return Ok(Client::Pods(pods));
                }
                _ => return Err(ctx.err(&k, "give either `pod` or `selector`")),
            };
            Ok(Client::Pods(pods.into()))
        }
    }
}

/// Parses a flow target: `http://name:port/path`, `name:port`,
/// `10.244.0.15:8080`, `localhost:80`, `<NodeIP>:30007`, `node-3:30007`,
/// `<NodePort:ns/name>:80` (that Service port's node port), `<LB:ns/name>:80`.
pub(super) fn resolve_to(ctx: &Ctx, key: &str, to: &str, cluster: &Cluster, external: bool) -> Result<Target, String> {
    let k = format!("{key}.to");
    let t = to.trim();
    let t = t.strip_prefix("curl ").map(str::trim).unwrap_or(t);
    let (scheme_port, rest) = if let Some(r) = t.strip_prefix("http://") {
        (Some(80), r)
    } else if let Some(r) = t.strip_prefix("https://") {
        (Some(443), r)
    } else {
        (None, t)
    };
    // `<NodeIP>` and `<LB:ns/name>` are hosts that may hold `/` and `:`.
    let host_end = if rest.starts_with('<') { rest.find('>').map_or(0, |i| i + 1) } else { 0 };
    let (hostport, path) = match rest[host_end..].find('/') {
        Some(i) => (&rest[..host_end + i], &rest[host_end + i..]),
        None => (rest, "/"),
    };
    let split = if host_end > 0 {
        hostport[host_end..].strip_prefix(':').map(|p| (&hostport[..host_end], p))
    } else {
        hostport.rsplit_once(':')
    };
    let (host, port) = match split {
        Some((h, p)) => {
            let port: u32 = p.parse().map_err(|_| ctx.err(&k, format!("`{p}` is not a port number")))?;
            (h, port)
        }
        None => {
            // `<NodePort:ns/name:80>` carries its port inside.
            let inner = hostport
                .strip_prefix("<NodePort:")
                .and_then(|h| h.strip_suffix('>'))
                .and_then(|h| h.rsplit_once(':'))
                .and_then(|(_, p)| p.parse::<u32>().ok());
            let port = scheme_port
                .or(inner)
                .ok_or_else(|| ctx.err(&k, format!("`{to}` has no port (write host:port or an http:// URL)")))?;
            (hostport, port)
        }
    };
    let port = u16::try_from(port)
        .ok()
        .filter(|&p| p > 0)
        .ok_or_else(|| ctx.err(&k, format!("port {port} is out of range 1-65535")))?;
    if host.is_empty() {
        return Err(ctx.err(&k, format!("`{to}` has no host")));
    }
    if host == "localhost" || host == "127.0.0.1" {
        return Ok(Target::Localhost(port));
    }
    if host == "<NodeIP>" {
        return Ok(Target::NodePort { node: None, port });
    }
    if let Some(name) = host.strip_prefix("<NodePort:").and_then(|h| h.strip_suffix('>')) {
        // `<NodePort:ns/name>:80` or `<NodePort:ns/name:80>`: the node port
        // allocated to that Service port, on any node.
        let (name, port) = match name.rsplit_once(':') {
            Some((n, p)) => (n, p.parse::<u16>().map_err(|_| ctx.err(&k, format!("`{p}` is not a port number")))?),
            None => (name, port),
        };
        let (ns, name) = name.split_once('/').unwrap_or(("default", name));
        let svc = cluster
            .namespace(ns)
            .and_then(|n| cluster.service_by_name(n, name))
            .ok_or_else(|| ctx.err(&k, format!("no Service `{ns}/{name}`")))?;
        let ports = &cluster.services[svc.index()].ports;
        let sp = ports
            .iter()
            .map(|&sp| &cluster.service_ports[sp.index()])
            .find(|sp| sp.port == port && sp.protocol == emu_models::cluster::Protocol::Tcp);
        let Some(sp) = sp else {
            return Err(ctx.err(&k, format!("Service `{ns}/{name}` has no TCP port {port}")));
        };
        let node_port = sp.node_port.ok_or_else(|| {
            ctx.err(&k, format!("Service `{ns}/{name}` port {port} has no node port (its type is ClusterIP)"))
        })?;
        return Ok(Target::NodePort { node: None, port: node_port });
    }
    if let Some(name) = host.strip_prefix("<LB:").and_then(|h| h.strip_suffix('>')) {
        let (ns, name) = name.split_once('/').unwrap_or(("default", name));
        let svc = cluster
            .namespace(ns)
            .and_then(|n| cluster.service_by_name(n, name))
            .ok_or_else(|| ctx.err(&k, format!("no Service `{ns}/{name}`")))?;
        if cluster.services[svc.index()].load_balancer_ip.is_none() {
            return Err(ctx.err(&k, format!("Service `{ns}/{name}` is not of type LoadBalancer")));
        }
        return Ok(Target::LoadBalancer { service: svc, port });
    }
    if let Some(n) = cluster.node_by_name(host) {
        return Ok(Target::NodePort { node: Some(n), port });
    }
    if let Ok(ip) = host.parse::<Ipv4>() {
        if let Some(pod) = cluster.pod_by_ip(ip) {
            return Ok(Target::Pod { pod, port });
        }
        if let Some(service) = cluster.service_by_ip(ip) {
            return Ok(Target::ServiceIp { service, port });
        }
        if let Some(n) = cluster.node_by_ip(ip) {
            return Ok(Target::NodePort { node: Some(n), port });
        }
        if let Some(service) = cluster.service_by_lb_ip(ip) {
            return Ok(Target::LoadBalancer { service, port });
        }
        return Err(ctx.err(&k, format!("no pod, Service or node has the address {ip}")));
    }
    if host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') {
        if !external {
            return Ok(Target::Name { name: host.to_string(), port });
        }
        // From outside, a name reaches the cluster through its Ingress
        // controller (external DNS points the host at it).
        let service = cluster.ingress_service.ok_or_else(|| {
            let why = if cluster.ingresses.is_empty() {
                "declare [[ingresses]]"
            } else {
                "ingress_controller.replicas is 0, so no controller serves the Ingresses"
            };
            ctx.err(&k, format!("an external client reaches `{host}` only through an Ingress: {why}"))
        })?;
        if port != 80 && port != 443 {
            return Err(ctx.err(&k, format!("the ingress controller serves ports 80 and 443, not {port}")));
        }
        let path = path.split(['?', '#']).next().unwrap_or("/");
        let backend = emu_models::cluster::ingress::route(&cluster.ingresses, host, path);
        return Ok(Target::Ingress { service, port, backend });
    }
    Err(ctx.err(&k, format!("`{host}` is neither an address nor a DNS name")))
}
