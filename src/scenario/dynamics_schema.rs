//! TOML of a changing cluster: `[[changes]]`, `[control_plane]`,
//! `[proxy.sync]` and the lifecycle keys of `[[pods]]`. Every key is
//! documented, with unit, default and source, in docs/scenario.md.

use std::collections::BTreeMap;

use emu_models::dynamics::{ControlParams, IntOrPercent, Lifecycle, Probe, SyncParams};
use serde::{Deserialize, Serialize};

use super::units::{DistText, Duration};

/// One `[[changes]]` entry: a time and exactly one action.
#[derive(Clone, Debug, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ChangeToml {
    /// Repeat this entry `count` times, `every` apart, with `{i}` in any
    /// string replaced by 0, 1, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// With `count`: the time between repetitions (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<Duration>,
    /// Absolute simulated time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Duration>,
    /// Time after the previous change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Duration>,
    /// Namespace of the target (default `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<ScaleToml>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_pod: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain_node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recover_node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_services: Option<CreateServicesToml>,
}

/// `scale = { deployment = "web", replicas = 20 }`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleToml {
    pub deployment: String,
    pub replicas: i64,
}

/// `create_services = { count = 1000, name = "churn-{i}", selector = { app = "web" }, port = 80, target_port = 8080 }`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateServicesToml {
    pub count: u32,
    #[serde(default = "default_created_name")]
    pub name: String,
    #[serde(default)]
    pub selector: BTreeMap<String, String>,
    #[serde(default = "default_port")]
    pub port: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_port: Option<u32>,
}

fn default_created_name() -> String {
    "created-{i}".into()
}

fn default_port() -> u32 {
    80
}

/// `readiness_probe = { period = "10s", ... }` of a `[[pods]]` entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbeToml {
    pub initial_delay: Duration,
    pub period: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

impl Default for ProbeToml {
    fn default() -> Self {
        let p = Probe::default();
        ProbeToml {
            initial_delay: Duration(p.initial_delay_ns),
            period: Duration(p.period_ns),
            success_threshold: p.success_threshold,
            failure_threshold: p.failure_threshold,
        }
    }
}

impl ProbeToml {
    /// The model's probe.
    pub fn probe(&self) -> Probe {
        Probe {
            initial_delay_ns: self.initial_delay.ns(),
            period_ns: self.period.ns(),
            success_threshold: self.success_threshold,
            failure_threshold: self.failure_threshold,
        }
    }
}

/// `max_surge = "25%"` or `max_surge = 3`.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum IntOrPercentToml {
    Int(u32),
    Text(String),
}

/// By hand, not untagged: a negative count says what is wrong instead of
/// "data did not match any variant".
impl<'de> Deserialize<'de> for IntOrPercentToml {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = IntOrPercentToml;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a count of pods (0 or more) or a percentage such as \"25%\"")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
                count(v)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
                count(v)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(IntOrPercentToml::Text(v.to_string()))
            }
        }
        fn count<E: serde::de::Error, N: Copy + std::fmt::Display + TryInto<u32>>(v: N) -> Result<IntOrPercentToml, E> {
            v.try_into().map(IntOrPercentToml::Int).map_err(|_| {
                E::custom(format!("{v} is not a count of pods (0 to 4294967295) or a percentage such as \"25%\""))
            })
        }
        d.deserialize_any(V)
    }
}

impl IntOrPercentToml {
    /// Parsed, or a message.
    pub fn parse(&self) -> Result<IntOrPercent, String> {
        match self {
            IntOrPercentToml::Int(n) => Ok(IntOrPercent::Int(*n)),
            IntOrPercentToml::Text(t) => t
                .strip_suffix('%')
                .and_then(|n| n.trim().parse::<u32>().ok())
                .filter(|&p| p <= 100)
                .map(IntOrPercent::Percent)
                .ok_or_else(|| format!("`{t}` is not a count or a percentage from 0% to 100%")),
        }
    }
}

/// The lifecycle keys of a `[[pods]]` entry (flattened into it).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct LifecycleToml {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readiness_probe: Option<ProbeToml>,
    pub app_start: DistText,
    pub pre_stop: Duration,
    pub termination_grace_period: Duration,
    pub max_surge: IntOrPercentToml,
    pub max_unavailable: IntOrPercentToml,
    pub min_ready: Duration,
}

impl Default for LifecycleToml {
    fn default() -> Self {
        let l = Lifecycle::default();
        let text = |v: IntOrPercent| match v {
            IntOrPercent::Int(n) => IntOrPercentToml::Int(n),
            IntOrPercent::Percent(p) => IntOrPercentToml::Text(format!("{p}%")),
        };
        LifecycleToml {
            readiness_probe: None,
            app_start: DistText(l.app_start),
            pre_stop: Duration(l.pre_stop_ns),
            termination_grace_period: Duration(l.grace_ns),
            max_surge: text(l.max_surge),
            max_unavailable: text(l.max_unavailable),
            min_ready: Duration(l.min_ready_ns),
        }
    }
}

/// `[control_plane]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControlPlaneToml {
    pub sandbox: DistText,
    pub container_start: DistText,
    pub endpointslice_delay: DistText,
    pub watch_delay: DistText,
    pub max_endpoints_per_slice: u32,
    pub sandbox_teardown: Duration,
    pub node_monitor_grace_period: Duration,
    pub eviction_timeout: Duration,
}

impl Default for ControlPlaneToml {
    fn default() -> Self {
        let c = ControlParams::default();
        ControlPlaneToml {
            sandbox: DistText(c.sandbox),
            container_start: DistText(c.container_start),
            endpointslice_delay: DistText(c.endpointslice_delay),
            watch_delay: DistText(c.watch_delay),
            max_endpoints_per_slice: c.max_endpoints_per_slice,
            sandbox_teardown: Duration(c.sandbox_teardown_ns),
            node_monitor_grace_period: Duration(c.node_monitor_grace_ns),
            eviction_timeout: Duration(c.eviction_ns),
        }
    }
}

impl ControlPlaneToml {
    /// The model's parameters.
    pub fn params(&self) -> ControlParams {
        ControlParams {
            sandbox: self.sandbox.0,
            container_start: self.container_start.0,
            endpointslice_delay: self.endpointslice_delay.0,
            watch_delay: self.watch_delay.0,
            max_endpoints_per_slice: self.max_endpoints_per_slice,
            sandbox_teardown_ns: self.sandbox_teardown.ns(),
            node_monitor_grace_ns: self.node_monitor_grace_period.ns(),
            eviction_ns: self.eviction_timeout.ns(),
        }
    }
}

/// `[proxy.sync]`: kube-proxy's sync loop and the cost of a sync.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncToml {
    pub min_sync_period: Duration,
    pub sync_period: Duration,
    pub full_sync_period: Duration,
    pub iptables_partial: bool,
    pub iptables_line: Duration,
    pub iptables_base: Duration,
    pub nft_port: Duration,
    pub nft_line: Duration,
    pub nft_base: Duration,
    pub ipvs_service: Duration,
    pub ipvs_base: Duration,
    pub ebpf_entry: Duration,
    pub ebpf_base: Duration,
    pub conntrack_cleanup: bool,
}

impl Default for SyncToml {
    fn default() -> Self {
        let p = SyncParams::default();
        SyncToml {
            min_sync_period: Duration(p.min_sync_ns),
            sync_period: Duration(p.sync_period_ns),
            full_sync_period: Duration(p.full_sync_period_ns),
            iptables_partial: p.iptables_partial,
            iptables_line: Duration(p.iptables_line_ns),
            iptables_base: Duration(p.iptables_base_ns),
            nft_port: Duration(p.nft_port_ns),
            nft_line: Duration(p.nft_line_ns),
            nft_base: Duration(p.nft_base_ns),
            ipvs_service: Duration(p.ipvs_service_ns),
            ipvs_base: Duration(p.ipvs_base_ns),
            ebpf_entry: Duration(p.ebpf_entry_ns),
            ebpf_base: Duration(p.ebpf_base_ns),
            conntrack_cleanup: p.conntrack_cleanup,
        }
    }
}

impl SyncToml {
    /// The model's parameters.
    pub fn params(&self) -> SyncParams {
        SyncParams {
            min_sync_ns: self.min_sync_period.ns(),
            sync_period_ns: self.sync_period.ns(),
            full_sync_period_ns: self.full_sync_period.ns(),
            iptables_partial: self.iptables_partial,
            iptables_line_ns: self.iptables_line.ns(),
            iptables_base_ns: self.iptables_base.ns(),
            nft_port_ns: self.nft_port.ns(),
            nft_line_ns: self.nft_line.ns(),
            nft_base_ns: self.nft_base.ns(),
            ipvs_service_ns: self.ipvs_service.ns(),
            ipvs_base_ns: self.ipvs_base.ns(),
            ebpf_entry_ns: self.ebpf_entry.ns(),
            ebpf_base_ns: self.ebpf_base.ns(),
            conntrack_cleanup: self.conntrack_cleanup,
        }
    }
}
