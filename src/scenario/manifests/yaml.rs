//! The YAML shapes emu reads from manifests: a superset of the fields of
//! every kind it models, read by serde and then checked by each kind's
//! loader.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Object {
    #[serde(default)]
    pub(super) api_version: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) kind: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) metadata: Meta,
    #[serde(default)]
    pub(super) spec: Option<Spanned<Spec>>,
    /// A `kind: List`'s objects.
    #[serde(default)]
    pub(super) items: Vec<Object>,
    /// An EndpointSlice's endpoints and ports.
    #[serde(default)]
    pub(super) endpoints: Vec<SliceEndpointY>,
    #[serde(default)]
    pub(super) ports: Vec<EndpointPortY>,
    /// An Endpoints object's subsets.
    #[serde(default)]
    pub(super) subsets: Vec<SubsetY>,
}

/// An EndpointSlice endpoint.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SliceEndpointY {
    #[serde(default)]
    pub(super) addresses: Vec<String>,
    pub(super) target_ref: Option<TargetRefY>,
}

/// A reference to the pod behind an endpoint.
#[derive(Deserialize)]
pub(super) struct TargetRefY {
    pub(super) kind: Option<String>,
    pub(super) name: String,
    pub(super) namespace: Option<String>,
}

/// An endpoint port (EndpointSlice, Endpoints).
#[derive(Deserialize)]
pub(super) struct EndpointPortY {
    pub(super) name: Option<String>,
    pub(super) port: Option<u32>,
    pub(super) protocol: Option<String>,
}

/// An Endpoints subset.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SubsetY {
    #[serde(default)]
    pub(super) addresses: Vec<EndpointAddressY>,
    #[serde(default)]
    pub(super) ports: Vec<EndpointPortY>,
}

/// An Endpoints address.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct EndpointAddressY {
    pub(super) ip: Option<String>,
    pub(super) target_ref: Option<TargetRefY>,
}

#[derive(Deserialize, Default)]
pub(super) struct Meta {
    #[serde(default)]
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) namespace: Option<String>,
    #[serde(default)]
    pub(super) labels: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum IntOrString {
    Int(u32),
    Str(String),
}

/// A superset of the Pod, Service and Deployment spec fields emu reads.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct Spec {
    // Pod
    #[serde(default)]
    pub(super) containers: Vec<Container>,
    pub(super) node_name: Option<String>,
    pub(super) host_network: Option<bool>,
    pub(super) dns_policy: Option<String>,
    pub(super) dns_config: Option<serde_ignored_value::Any>,
    pub(super) termination_grace_period_seconds: Option<Spanned<i64>>,
    // Service
    #[serde(rename = "type")]
    pub(super) kind: Option<String>,
    pub(super) selector: Option<Selector>,
    #[serde(default)]
    pub(super) ports: Vec<ServicePort>,
    #[serde(rename = "clusterIP")]
    pub(super) cluster_ip: Option<String>,
    pub(super) external_traffic_policy: Option<String>,
    pub(super) internal_traffic_policy: Option<String>,
    pub(super) session_affinity: Option<String>,
    pub(super) session_affinity_config: Option<AffinityConfig>,
    #[serde(default, rename = "externalIPs")]
    pub(super) external_ips: Vec<String>,
    #[serde(default)]
    pub(super) ip_families: Vec<String>,
    pub(super) traffic_distribution: Option<String>,
    #[serde(rename = "loadBalancerIP")]
    pub(super) load_balancer_ip: Option<String>,
    pub(super) health_check_node_port: Option<u32>,
    pub(super) external_name: Option<String>,
    // Ingress
    pub(super) tls: Option<serde_ignored_value::Any>,
    pub(super) ingress_class_name: Option<String>,
    // Ingress
    #[serde(default)]
    pub(super) rules: Vec<IngressRuleY>,
    pub(super) default_backend: Option<BackendY>,
    /// A pod spec's native sidecars (`restartPolicy: Always`) and the
    /// init containers that finish before it starts.
    #[serde(default)]
    pub(super) init_containers: Vec<Container>,
    pub(super) node_selector: Option<BTreeMap<String, String>>,
    /// A pod's own DNS name: `hostname` (its name) under the headless
    /// Service `subdomain`.
    pub(super) hostname: Option<String>,
    pub(super) subdomain: Option<String>,
    // StatefulSet
    pub(super) service_name: Option<String>,
    // Job
    pub(super) parallelism: Option<Spanned<i64>>,
    // CronJob
    pub(super) job_template: Option<Box<JobTemplate>>,
    pub(super) schedule: Option<String>,
    // Deployment
    pub(super) replicas: Option<u32>,
    pub(super) template: Option<Box<Template>>,
    pub(super) strategy: Option<Spanned<Strategy>>,
    pub(super) min_ready_seconds: Option<Spanned<i64>>,
}

/// A Deployment's `spec.strategy`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Strategy {
    #[serde(rename = "type")]
    pub(super) kind: Option<String>,
    pub(super) rolling_update: Option<RollingUpdate>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RollingUpdate {
    pub(super) max_surge: Option<Spanned<IntOrText>>,
    pub(super) max_unavailable: Option<Spanned<IntOrText>>,
}

/// `maxSurge: 3` or `maxSurge: 25%`.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum IntOrText {
    Int(i64),
    Text(String),
}

/// A container's `readinessProbe`: its timing (the handler, httpGet,
/// tcpSocket, exec or grpc, is accepted and not modelled).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ProbeY {
    pub(super) initial_delay_seconds: Option<Spanned<i64>>,
    pub(super) period_seconds: Option<Spanned<i64>>,
    pub(super) success_threshold: Option<Spanned<i64>>,
    pub(super) failure_threshold: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct LifecycleY {
    pub(super) pre_stop: Option<Spanned<HandlerY>>,
}

/// A lifecycle hook handler.
#[derive(Deserialize)]
pub(super) struct HandlerY {
    pub(super) exec: Option<ExecY>,
    pub(super) sleep: Option<SleepY>,
}

#[derive(Deserialize)]
pub(super) struct ExecY {
    #[serde(default)]
    pub(super) command: Vec<String>,
}

#[derive(Deserialize)]
pub(super) struct SleepY {
    pub(super) seconds: Spanned<i64>,
}

#[derive(Deserialize)]
pub(super) struct IngressRuleY {
    pub(super) host: Option<String>,
    pub(super) http: Option<HttpY>,
}

#[derive(Deserialize)]
pub(super) struct HttpY {
    pub(super) paths: Vec<PathY>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PathY {
    pub(super) path: Option<String>,
    pub(super) path_type: Option<String>,
    pub(super) backend: BackendY,
}

#[derive(Deserialize)]
pub(super) struct BackendY {
    pub(super) service: Option<ServiceBackendY>,
    pub(super) resource: Option<serde_ignored_value::Any>,
}

#[derive(Deserialize)]
pub(super) struct ServiceBackendY {
    pub(super) name: String,
    pub(super) port: PortY,
}

#[derive(Deserialize)]
pub(super) struct PortY {
    pub(super) number: Option<u32>,
    pub(super) name: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct AffinityConfig {
    #[serde(rename = "clientIP")]
    pub(super) client_ip: Option<ClientIpConfig>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ClientIpConfig {
    pub(super) timeout_seconds: Option<u32>,
}

/// A Service's selector (a plain map) or a Deployment's (a LabelSelector).
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum Selector {
    Map(BTreeMap<String, String>),
    Full(crate::scenario::netpol::SelectorY),
}

pub(super) mod serde_ignored_value {
    /// Any YAML value, read and thrown away.
    pub struct Any;
    impl<'de> serde::Deserialize<'de> for Any {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            serde::de::IgnoredAny::deserialize(d).map(|_| Any)
        }
    }
}

/// A CronJob's `spec.jobTemplate`.
#[derive(Deserialize)]
pub(super) struct JobTemplate {
    pub(super) spec: Spec,
}

#[derive(Deserialize)]
pub(super) struct Template {
    #[serde(default)]
    pub(super) metadata: Meta,
    pub(super) spec: Spec,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Container {
    pub(super) name: String,
    pub(super) restart_policy: Option<String>,
    #[serde(default)]
    pub(super) ports: Vec<ContainerPort>,
    pub(super) readiness_probe: Option<Spanned<ProbeY>>,
    pub(super) lifecycle: Option<LifecycleY>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ContainerPort {
    pub(super) container_port: u32,
    pub(super) name: Option<String>,
    pub(super) protocol: Option<String>,
    pub(super) host_port: Option<u32>,
    #[serde(rename = "hostIP")]
    pub(super) host_ip: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ServicePort {
    pub(super) name: Option<String>,
    pub(super) port: u32,
    pub(super) target_port: Option<IntOrString>,
    pub(super) node_port: Option<u32>,
    pub(super) protocol: Option<String>,
}

/// Just the spec's keys of a document.
#[derive(Deserialize)]
pub(super) struct SpecKeys {
    #[serde(default)]
    pub(super) spec: BTreeMap<String, serde_ignored_value::Any>,
    #[serde(default)]
    pub(super) items: Vec<SpecKeys>,
}
