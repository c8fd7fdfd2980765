//! Structure-aware mutations of scenario (TOML) and manifest (YAML) text:
//! numbers and durations swapped for boundary values, strings for
//! troublesome ones, lines deleted, duplicated or inserted from a
//! dictionary of keys, bytes flipped, the text cut short.

use emu_engine::rng::Stream;

/// Numbers at the edges of every integer width and unit emu stores.
const NUMBERS: [&str; 22] = [
    "0",
    "1",
    "-1",
    "2",
    "3",
    "29",
    "31",
    "32",
    "65535",
    "65536",
    "30000",
    "4294967295",
    "4294967296",
    "4000000000",
    "9223372036854775807",
    "18446744073709551615",
    "1e300",
    "-1e300",
    "nan",
    "inf",
    "0.0000001",
    "100000000",
];

/// Durations and distributions at the edges.
const DURATIONS: [&str; 14] = [
    "0ns",
    "1ns",
    "5s",
    "4.3s",
    "1000000s",
    "1000001s",
    "9000000000s",
    "exp(0ns)",
    "exp(1000000s)",
    "lognormal(1s, 1000000s)",
    "uniform(5s, 1s)",
    "normal(1ms, 1000s)",
    "const()",
    "-1s",
];

/// Strings that name nothing, everything, or something malformed.
const STRINGS: [&str; 24] = [
    "",
    "None",
    "node-99",
    "10.96.0.0/29",
    "10.96.0.0/31",
    "0.0.0.0/0",
    "10.244.0.0/30",
    "http://nowhere:80",
    "http://localhost:1",
    "http://10.244.0.2:80",
    "<LB:default/web:80>",
    "<NodeIP>:99999",
    "external",
    "kube-system",
    "default",
    "Local",
    "ipvs",
    "nftables",
    "ebpf",
    "vxlan",
    "lc",
    "30000-30001",
    "ClientIP",
    "LoadBalancer",
];

/// TOML lines (and tables) a mutation may insert.
const TOML_LINES: [&str; 24] = [
    "count = 3",
    "count = 0",
    "replicas = 0",
    "replicas = 4000000000",
    "cluster_ip = \"None\"",
    "selector = {}",
    "concurrency = 100000000",
    "rate = 1e300",
    "think_time = \"999999s\"",
    "timeout = \"1ns\"",
    "keep_alive = true",
    "allow_nxdomain = true",
    "[sweep]\n\"cluster.nodes\" = [1, 2]",
    "[sweep]\nreplications = [0, 3]",
    "[output]\ninterval = \"1ns\"",
    "[dns]\nreplicas = 0",
    "[dns]\nnode_local_cache = true",
    "[node]\nconntrack_max = 1",
    "[node]\nsoftirq_cores = 4294967295",
    "[proxy]\nmode = \"ipvs\"\n[proxy.ipvs]\nscheduler = \"wlc\"",
    "[cni]\nmode = \"vxlan\"\npod_mtu = 1500",
    "[datapath]\nsocket = \"5s\"",
    "[[services]]\nname = \"h\"\ncluster_ip = \"None\"\nports = [{ port = 80 }]",
    "[[flows]]\nname = \"h\"\nfrom = \"client\"\nto = \"http://h:80\"\nrequests = 3",
];

/// YAML lines a mutation may insert.
const YAML_LINES: [&str; 10] = [
    "---",
    "a: &a [*a]",
    "b: *nope",
    "  replicas: 4000000000",
    "  clusterIP: None",
    "  type: LoadBalancer",
    "  externalTrafficPolicy: Local",
    "kind: NetworkPolicy",
    "    targetPort: [1]",
    "- {",
];

/// Keys the key-path mutation sets, and whether they take a number.
const KEYS: [(&str, bool); 50] = [
    ("seed", true),
    ("replications", true),
    ("cluster.nodes", true),
    ("cluster.node_cidr_mask_size", true),
    ("cluster.service_cidr", false),
    ("cluster.pod_cidr", false),
    ("cluster.node_ip_cidr", false),
    ("cluster.load_balancer_cidr", false),
    ("cluster.node_port_range", false),
    ("cluster.placement", false),
    ("dns.replicas", true),
    ("dns.concurrency", true),
    ("dns.ndots", true),
    ("dns.service_time", false),
    ("dns.node_local_cache", false),
    ("node.softirq_cores", true),
    ("node.conntrack_max", true),
    ("node.backlog", true),
    ("node.rto", false),
    ("node.tcp_time_wait", false),
    ("datapath.socket", false),
    ("datapath.underlay_latency", false),
    ("datapath.underlay_bandwidth", false),
    ("cni.mode", false),
    ("cni.pod_mtu", true),
    ("cni.link_mtu", true),
    ("proxy.mode", false),
    ("proxy.iptables.rule_cost", false),
    ("proxy.ipvs.scheduler", false),
    ("proxy.ipvs.lookup", false),
    ("output.interval", false),
    ("load_balancer.check_interval", false),
    ("ingress_controller.replicas", true),
    ("flows[0].requests", true),
    ("flows[0].rate", true),
    ("flows[0].concurrency", true),
    ("flows[0].think_time", false),
    ("flows[0].timeout", false),
    ("flows[0].to", false),
    ("flows[0].start", false),
    ("pods[0].replicas", true),
    ("pods[0].node", false),
    ("services[0].cluster_ip", false),
    ("services[0].type", false),
    ("services[0].session_affinity", false),
    ("flows[0].request_bytes", true),
    ("flows[0].response_bytes", true),
    ("flows[0].duration", false),
    ("dns.query_bytes", true),
    ("node.cpu_per_byte_ps", true),
];

fn pick<'a>(rng: &mut Stream, from: &[&'a str]) -> &'a str {
    from[rng.below(from.len() as u64) as usize]
}

/// Applies one or two mutations to `text`.
pub fn mutate(text: &mut Vec<u8>, rng: &mut Stream, yaml: bool) {
    for _ in 0..1 + rng.below(2) {
        match rng.below(if yaml { 14 } else { 20 }) {
            0..=3 => replace_token(text, rng, |b| b.is_ascii_digit(), &NUMBERS),
            4..=5 => replace_quoted(text, rng, &DURATIONS),
            6..=7 => replace_quoted(text, rng, &STRINGS),
            8..=9 => edit_lines(text, rng, |lines, i, _| {
                lines.remove(i);
            }),
            10..=11 => edit_lines(text, rng, |lines, i, _| {
                let l = lines[i].clone();
                lines.insert(i, l);
            }),
            12..=13 => edit_lines(text, rng, |lines, i, rng| {
                let l = pick(rng, if yaml { &YAML_LINES } else { &TOML_LINES });
                lines.insert(i, l.as_bytes().to_vec());
            }),
            14..=17 => set_key(text, rng),
            18 => {
                if !text.is_empty() {
                    let i = rng.below(text.len() as u64) as usize;
                    text[i] = [0xff, 0xc3, b'"', b'[', b'\n', b'=', 0][rng.below(7) as usize];
                }
            }
            _ => {
                let n = text.len();
                text.truncate(n - rng.below(n as u64 / 4 + 1) as usize);
            }
        }
    }
}

/// Replaces a random run of bytes matching `is` with a value of `values`.
fn replace_token(text: &mut Vec<u8>, rng: &mut Stream, is: impl Fn(u8) -> bool, values: &[&str]) {
    let starts: Vec<usize> = (0..text.len()).filter(|&i| is(text[i]) && (i == 0 || !is(text[i - 1]))).collect();
    if starts.is_empty() {
        return;
    }
    let s = starts[rng.below(starts.len() as u64) as usize];
    let e = (s..text.len()).find(|&i| !is(text[i]) && text[i] != b'.').unwrap_or(text.len());
    let v = pick(rng, values);
    text.splice(s..e, v.bytes());
}

/// Replaces the inside of a random double-quoted string.
fn replace_quoted(text: &mut Vec<u8>, rng: &mut Stream, values: &[&str]) {
    let quotes: Vec<usize> = (0..text.len()).filter(|&i| text[i] == b'"').collect();
    if quotes.len() < 2 {
        return;
    }
    let k = rng.below(quotes.len() as u64 / 2) as usize * 2;
    let (s, e) = (quotes[k] + 1, quotes[k + 1]);
    let v = pick(rng, values);
    text.splice(s..e, v.bytes());
}

fn edit_lines(text: &mut Vec<u8>, rng: &mut Stream, f: impl FnOnce(&mut Vec<Vec<u8>>, usize, &mut Stream)) {
    let mut lines: Vec<Vec<u8>> = text.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    let i = rng.below(lines.len() as u64) as usize;
    f(&mut lines, i, rng);
    *text = lines.join(&b'\n');
}

/// Parses `text` as TOML, sets one key of [`KEYS`] to a boundary value and
/// writes it back (text that does not parse is left alone).
fn set_key(text: &mut Vec<u8>, rng: &mut Stream) {
    let Ok(src) = std::str::from_utf8(text) else { return };
    let Ok(mut doc) = src.parse::<toml::Table>() else { return };
    let (key, numeric) = KEYS[rng.below(KEYS.len() as u64) as usize];
    let value = if numeric {
        let n = pick(rng, &NUMBERS);
        n.parse::<i64>().map(toml::Value::Integer).or_else(|_| n.parse::<f64>().map(toml::Value::Float))
    } else if rng.below(2) == 0 {
        Ok(toml::Value::String(pick(rng, &DURATIONS).into()))
    } else {
        Ok(toml::Value::String(pick(rng, &STRINGS).into()))
    };
    let Ok(value) = value else { return };
    let mut segs = key.split('.').peekable();
    let mut table = &mut doc;
    while let Some(seg) = segs.next() {
        let (name, index) = match seg.split_once('[') {
            Some((n, i)) => (n, i.trim_end_matches(']').parse::<usize>().ok()),
            None => (seg, None),
        };
        if segs.peek().is_none() && index.is_none() {
            table.insert(name.into(), value);
            break;
        }
        let entry = table.entry(name).or_insert_with(|| toml::Value::Table(Default::default()));
        let next = match (entry, index) {
            (toml::Value::Array(a), Some(i)) => match a.get_mut(i) {
                Some(toml::Value::Table(t)) => t,
                _ => return,
            },
            (toml::Value::Table(t), None) => t,
            _ => return,
        };
        table = next;
    }
    if let Ok(out) = toml::to_string(&doc) {
        *text = out.into_bytes();
    }
}
