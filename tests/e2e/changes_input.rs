//! Bad input of a changing cluster (`[[changes]]`, the lifecycle keys of
//! `[[pods]]`, `[control_plane]`, `[proxy.sync]`): exit code 2 and one
//! line `FILE:LINE:COL: KEYPATH: message` naming the key at fault (TOML
//! reader errors: `FILE:LINE:COL: message`, the position naming it).
//! `emu validate` runs every check `emu run` does, World::new included.

use super::util::*;

/// Lines 1-18; `[[changes]]` entries go after it, from line 19.
const BASE: &str = r#"[cluster]
nodes = 2
[[pods]]
name = "client"
[[pods]]
name = "web"
replicas = 3
labels = { app = "web" }
ports = [8080]
[[services]]
name = "web"
selector = { app = "web" }
ports = [{ port = 80, target_port = 8080 }]
[[flows]]
name = "f"
from = "client"
to = "http://web:80"
requests = 10
"#;

/// `emu validate` of `text`: exit 2 and a one-line message that starts
/// with `bad.toml:{at}: ` and contains `needle`; returns the message.
fn refused(text: &str, at: &str, needle: &str) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let sc = write(tmp.path(), "bad.toml", text);
    let o = emu(&["validate", sc.to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "expected exit 2, got {:?}: {err}", o.status.code());
    let line = err.trim_end();
    assert_eq!(line.lines().count(), 1, "more than one line: {err}");
    let want = format!("error: {}:{at}: ", sc.display());
    assert!(line.starts_with(&want), "expected `{want}...`, got: {err}");
    assert!(line.contains(needle), "message lacks `{needle}`: {err}");
    err
}

fn with(extra: &str) -> String {
    format!("{BASE}{extra}")
}

/// The web template with one more key (at line 8).
fn web_with(key: &str) -> String {
    BASE.replace("replicas = 3\n", &format!("replicas = 3\n{key}\n"))
}

#[test]
fn the_base_with_a_timeline_is_good() {
    let tmp = tempfile::tempdir().unwrap();
    let text = with(
        "[[changes]]\nat = \"1s\"\nrollout = \"deployment/web\"\n[[changes]]\nafter = \"1s\"\nscale = { deployment = \"web\", replicas = 5 }\n[[changes]]\nafter = \"1s\"\ndelete_pod = \"pod/web-1\"\n[[changes]]\nafter = \"1s\"\ndrain_node = \"node/node-1\"\n[[changes]]\nafter = \"1s\"\nfail_node = \"node-1\"\n[[changes]]\nafter = \"1s\"\nrecover_node = \"node-1\"\n[[changes]]\nafter = \"1s\"\ncreate_services = { count = 3, name = \"c-{i}\", selector = { app = \"web\" }, port = 80, target_port = 8080 }\n",
    );
    let sc = write(tmp.path(), "good.toml", &text);
    let o = emu(&["validate", sc.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn an_unknown_deployment() {
    refused(
        &with("[[changes]]\nat = \"1s\"\nrollout = \"nosuch\"\n"),
        "21:1",
        "changes[0].rollout: no Deployment or [[pods]] template `nosuch` in namespace `default`",
    );
    refused(
        &with("[[changes]]\nat = \"1s\"\nscale = { deployment = \"deployment/api\", replicas = 2 }\n"),
        "21:11",
        "changes[0].scale.deployment: no Deployment or [[pods]] template `api`",
    );
}

#[test]
fn an_unknown_node() {
    refused(
        &with("[[changes]]\nat = \"1s\"\ndrain_node = \"node-7\"\n"),
        "21:1",
        "changes[0].drain_node: no node `node-7` (nodes are node-0 .. node-1)",
    );
    refused(
        &with("[[changes]]\nat = \"1s\"\nfail_node = \"node/node-2\"\n"),
        "21:1",
        "changes[0].fail_node: no node `node-2`",
    );
}

#[test]
fn an_unknown_pod() {
    refused(
        &with("[[changes]]\nat = \"1s\"\ndelete_pod = \"pod/web-3\"\n"),
        "21:1",
        "changes[0].delete_pod: no pod `web-3` in namespace `default` at time 0",
    );
}

#[test]
fn a_time_before_the_previous_change() {
    refused(
        &with("[[changes]]\nat = \"2s\"\nrollout = \"web\"\n[[changes]]\nat = \"1500ms\"\nrollout = \"web\"\n"),
        "23:1",
        "changes[1].at: 1.5s is before the previous change (2s): changes are listed in time order",
    );
}

#[test]
fn a_negative_replica_count() {
    refused(
        &with("[[changes]]\nat = \"1s\"\nscale = { deployment = \"web\", replicas = -1 }\n"),
        "21:31",
        "changes[0].scale.replicas: -1 is not a replica count from 0 to",
    );
}

#[test]
fn two_actions_in_one_entry() {
    refused(
        &with("[[changes]]\nat = \"1s\"\nrollout = \"web\"\nfail_node = \"node-1\"\n"),
        "19:1",
        "changes[0]: has 2 actions (rollout, fail_node): write one [[changes]] entry per action",
    );
}

#[test]
fn no_action() {
    refused(
        &with("[[changes]]\nat = \"1s\"\nnamespace = \"default\"\n"),
        "19:1",
        "changes[0]: needs one action: rollout, scale, delete_pod, drain_node, fail_node, recover_node or create_services",
    );
}

#[test]
fn at_and_after_together() {
    refused(
        &with("[[changes]]\nat = \"1s\"\nafter = \"1s\"\nrollout = \"web\"\n"),
        "21:1",
        "changes[0].after: set `at` or `after`, not both",
    );
    refused(
        &with("[[changes]]\nrollout = \"web\"\n"),
        "19:1",
        "changes[0]: needs `at` (a time) or `after` (a time after the previous change)",
    );
}

#[test]
fn an_unknown_key_in_a_change() {
    refused(
        &with("[[changes]]\nat = \"1s\"\nrolout = \"web\"\n"),
        "21:1",
        "unknown field `rolout`, expected one of `count`, `every`, `at`",
    );
    refused(
        &with("[[changes]]\nat = \"1s\"\nscale = { deployment = \"web\", replica = 2 }\n"),
        "21:31",
        "unknown field `replica`",
    );
}

#[test]
fn a_surge_above_100_percent() {
    refused(
        &web_with("max_surge = \"150%\""),
        "8:1",
        "pods[1].max_surge: `150%` is not a count or a percentage from 0% to 100%",
    );
    refused(&web_with("max_unavailable = -1"), "8:19", "-1 is not a count of pods");
    refused(
        &web_with("max_surge = 0\nmax_unavailable = \"0%\""),
        "8:1",
        "pods[1].max_surge: max_surge and max_unavailable cannot both be 0",
    );
}

#[test]
fn a_probe_period_of_zero() {
    refused(
        &web_with("readiness_probe = { period = \"0s\" }"),
        "8:21",
        "pods[1].readiness_probe.period: must be above zero",
    );
    refused(
        &web_with("readiness_probe = { success_threshold = 0 }"),
        "8:21",
        "pods[1].readiness_probe.success_threshold: must be at least 1",
    );
    refused(&web_with("readiness_probe = { perod = \"1s\" }"), "8:21", "unknown field `perod`");
}

#[test]
fn created_services_are_checked() {
    refused(
        &with("[[changes]]\nat = \"1s\"\ncreate_services = { count = 2, name = \"extra\" }\n"),
        "21:32",
        "changes[0].create_services.name: a name for count > 1 needs {i} to make names unique",
    );
    refused(
        &with("[[changes]]\nat = \"1s\"\nnamespace = \"shop\"\ncreate_services = { count = 1, name = \"x\" }\n"),
        "21:1",
        "changes[0].namespace: no namespace `shop`",
    );
    refused(
        &with("[[changes]]\nat = \"1s\"\ncreate_services = { count = 1, name = \"x\", target_port = 70000 }\n"),
        "21:44",
        "changes[0].create_services.target_port: port 70000 is out of range 1-65535",
    );
    // A flow may not target a Service that a change creates.
    let text = BASE.replace("http://web:80", "http://late-0:80")
        + "[[changes]]\nat = \"1s\"\ncreate_services = { count = 1, name = \"late-{i}\", selector = { app = \"web\" }, target_port = 8080 }\n";
    refused(&text, "17:1", "flows[0].to: `http://late-0:80` reaches Service default/late-0, which changes[0] creates");
}

#[test]
fn control_plane_and_sync_values() {
    let timeline = "[[changes]]\nat = \"1s\"\nrollout = \"web\"\n";
    refused(
        &with(&format!("{timeline}[proxy.sync]\nsync_period = \"0s\"\n")),
        "23:1",
        "proxy.sync.sync_period: must be above zero",
    );
    refused(
        &with(&format!("{timeline}[control_plane]\nmax_endpoints_per_slice = 0\n")),
        "23:1",
        "control_plane.max_endpoints_per_slice: must be from 1 to 1000",
    );
    refused(&with(&format!("{timeline}[control_plane]\nsandbox = \"fast\"\n")), "23:11", "fast");
    refused(&with(&format!("{timeline}[control_plane]\nwatchdelay = \"1s\"\n")), "23:1", "unknown field `watchdelay`");
}

#[test]
fn a_change_to_a_flow_s_client_pods() {
    // The client pod is on node-0 (round robin from the first pod).
    refused(
        &with("[[changes]]\nat = \"1s\"\nfail_node = \"node-0\"\n"),
        "21:1",
        "changes[0].fail_node: it would delete or move pod default/client, a client of flow `f`",
    );
    refused(
        &with("[[changes]]\nat = \"1s\"\nrollout = \"client\"\n"),
        "21:1",
        "changes[0].rollout: it would delete or move pod default/client",
    );
}
