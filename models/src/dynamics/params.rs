//! The parameters of a changing cluster: how pods start and stop, how a
//! Deployment rolls, and how a change travels from the API server to every
//! node's kube-proxy. Every default has a unit and a source; the ones that
//! are estimates say so.

use emu_engine::Dist;

/// A count given as a number or as a percentage of a Deployment's replicas
/// (`maxSurge: 25%`, `maxUnavailable: 1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntOrPercent {
    /// A number of pods.
    Int(u32),
    /// A percentage of the desired replicas.
    Percent(u32),
}

impl IntOrPercent {
    /// The number of pods for `replicas` desired ones, rounded up
    /// (`round_up`, maxSurge) or down (maxUnavailable), as
    /// `intstr.GetScaledValueFromIntOrPercent` in the Deployment controller.
    pub fn scaled(self, replicas: u32, round_up: bool) -> u32 {
        match self {
            IntOrPercent::Int(n) => n,
            IntOrPercent::Percent(p) => {
                let x = replicas as u64 * p as u64;
                (if round_up { x.div_ceil(100) } else { x / 100 }) as u32
            }
        }
    }
}

/// A readiness probe (`readinessProbe` of a container).
///
/// | field | default | source |
/// |---|---|---|
/// | `initial_delay_ns` | 0 s | `initialDelaySeconds` default (Kubernetes API reference, Probe) |
/// | `period_ns` | 10 s | `periodSeconds` default |
/// | `success_threshold` | 1 | `successThreshold` default |
/// | `failure_threshold` | 3 | `failureThreshold` default |
///
/// The kubelet runs the first probe `initial_delay_ns` after the container
/// started, then every `period_ns`; a probe succeeds once the application
/// listens. The pod turns Ready after `success_threshold` consecutive
/// successes. During termination the probe keeps running; the application
/// stops answering it at SIGTERM, and `failure_threshold` failures later
/// the endpoint's `serving` condition turns false.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    /// Delay before the first probe [ns].
    pub initial_delay_ns: u64,
    /// Interval between probes [ns].
    pub period_ns: u64,
    /// Consecutive successes to turn Ready.
    pub success_threshold: u32,
    /// Consecutive failures to turn not Ready.
    pub failure_threshold: u32,
}

impl Default for Probe {
    fn default() -> Self {
        Probe { initial_delay_ns: 0, period_ns: 10_000_000_000, success_threshold: 1, failure_threshold: 3 }
    }
}

/// How the pods of one workload (a `[[pods]]` entry or a Deployment) start,
/// stop and roll.
///
/// | field | default | source |
/// |---|---|---|
/// | `readiness` | none | a container without `readinessProbe` is Ready once started (pod lifecycle docs) |
/// | `app_start` | `const(0s)` | the time from container start until the application listens; 0 unless set |
/// | `pre_stop_ns` | 0 s | no `lifecycle.preStop` hook unless set (`exec: sleep N` or `sleep: {seconds: N}`, KEP-3960) |
/// | `grace_ns` | 30 s | `terminationGracePeriodSeconds` default |
/// | `max_surge` | 25% | Deployment `strategy.rollingUpdate.maxSurge` default |
/// | `max_unavailable` | 25% | Deployment `strategy.rollingUpdate.maxUnavailable` default |
/// | `min_ready_ns` | 0 s | Deployment `minReadySeconds` default |
/// | `drain_ns` | `const(0s)` | after SIGTERM the application finishes its in-flight requests, then exits; 0: it exits as soon as none is left |
#[derive(Clone, Debug, PartialEq)]
pub struct Lifecycle {
    /// The readiness probe, if any.
    pub readiness: Option<Probe>,
    /// Application start after its container started [ns distribution].
    pub app_start: Dist,
    /// The preStop hook's sleep [ns].
    pub pre_stop_ns: u64,
    /// terminationGracePeriodSeconds [ns].
    pub grace_ns: u64,
    /// maxSurge.
    pub max_surge: IntOrPercent,
    /// maxUnavailable.
    pub max_unavailable: IntOrPercent,
    /// minReadySeconds [ns].
    pub min_ready_ns: u64,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle {
            readiness: None,
            app_start: Dist::Constant(0),
            pre_stop_ns: 0,
            grace_ns: 30_000_000_000,
            max_surge: IntOrPercent::Percent(25),
            max_unavailable: IntOrPercent::Percent(25),
            min_ready_ns: 0,
        }
    }
}

/// The control plane between a change and the nodes, and the pods' start.
///
/// | parameter | default | source |
/// |---|---|---|
/// | `sandbox` | `lognormal(600ms, 200ms)` | estimate: scheduling, the pod sandbox and CNI ADD (Cilium's setupPodNetwork takes ~307-320 ms per pod with 100 started in parallel, cilium#48392); the pod IP is allocated at CNI ADD |
/// | `container_start` | `lognormal(400ms, 200ms)` | estimate: creating and starting the containers of a pulled image; with `sandbox`, p99 about 2.3 s, inside the pod startup SLO (p99 <= 5 s without image pulls, sig-scalability slos) |
/// | `endpointslice_delay` | `lognormal(100ms, 50ms)` | estimate: kubelet status update, the EndpointSlice controller's queue (batch period 0, kube-controller-manager `--endpointslice-updates-batch-period`) and the slice write |
/// | `watch_delay` | `lognormal(100ms, 50ms)` | estimate: the API server's watch fan-out of a slice update to a node's kube-proxy |
/// | `sandbox_teardown_ns` | 1 s | estimate: the kubelet's pod sync after the last container exits, StopPodSandbox and CNI DEL; until then the pod's address answers with RSTs (nothing listens), after it nothing answers |
/// | `max_endpoints_per_slice` | 100 | kube-controller-manager `--max-endpoints-per-slice` default |
/// | `node_monitor_grace_ns` | 50 s | kube-controller-manager `--node-monitor-grace-period` default since v1.32 (40 s before; kubernetes PR #126287): a node that stops reporting turns NotReady, and `MarkPodsNotReady` turns its pods not ready |
/// | `eviction_ns` | 300 s | DefaultTolerationSeconds admission plugin: `node.kubernetes.io/unreachable` NoExecute toleration of 300 s, then the pods are deleted |
#[derive(Clone, Debug, PartialEq)]
pub struct ControlParams {
    /// Scheduling, sandbox and CNI ADD [ns distribution].
    pub sandbox: Dist,
    /// Container creation and start [ns distribution].
    pub container_start: Dist,
    /// From a pod's condition change to its EndpointSlice update [ns distribution].
    pub endpointslice_delay: Dist,
    /// From a slice (or Service) update to a node's kube-proxy [ns distribution].
    pub watch_delay: Dist,
    /// Endpoints per EndpointSlice (counts `slices` in programming.csv).
    pub max_endpoints_per_slice: u32,
    /// From a pod's last container exit to its sandbox's teardown (CNI
    /// DEL frees the address) [ns].
    pub sandbox_teardown_ns: u64,
    /// node-monitor-grace-period [ns].
    pub node_monitor_grace_ns: u64,
    /// Unreachable toleration before eviction [ns].
    pub eviction_ns: u64,
}

impl Default for ControlParams {
    fn default() -> Self {
        ControlParams {
            sandbox: Dist::lognormal(600e6, 200e6),
            container_start: Dist::lognormal(400e6, 200e6),
            endpointslice_delay: Dist::lognormal(100e6, 50e6),
            watch_delay: Dist::lognormal(100e6, 50e6),
            max_endpoints_per_slice: 100,
            sandbox_teardown_ns: 1_000_000_000,
            node_monitor_grace_ns: 50_000_000_000,
            eviction_ns: 300_000_000_000,
        }
    }
}

/// kube-proxy's sync loop and what a sync costs, per mode.
///
/// | parameter | default | source |
/// |---|---|---|
/// | `min_sync_ns` | 1 s | kube-proxy `minSyncPeriod` default (pkg/proxy/apis/config/v1alpha1/defaults.go) |
/// | `sync_period_ns` | 30 s | kube-proxy `syncPeriod` default: a sync at least this often, even without changes (partial: it rewrites KUBE-SERVICES but no changed chain) |
/// | `full_sync_period_ns` | 1 h | kube-proxy forces a full sync about hourly (kubernetes PR #129329, v1.33); in the KEP-3453 era every `syncPeriod` was full: set 30 s to reproduce its 5,000-node figures |
/// | `iptables_partial` | true | KEP-3453 MinimizeIPTablesRestore (GA in 1.28): only changed Services' chains are rewritten between full syncs |
/// | `iptables_line_ns` | 18 us | kubernetes#96018: iptables-restore of 695,992 lines in 12.8 s |
/// | `iptables_base_ns` | 50 ms | estimate: iptables-save, the restore's fork and table commit |
/// | `nft_port_ns` | 12 us | estimate, calibrated so that adding one Service beside 10,000 takes ~141 ms (kubernetes PR #126013, after its fix): kube-proxy's walk of every Service port per sync |
/// | `nft_line_ns` | 10 us | estimate: one rule or element written |
/// | `nft_base_ns` | 20 ms | estimate: the nft transaction |
/// | `ipvs_service_ns` | 40 us | estimate from kubernetes#84906: a sync of > 1,500 Services took 730 ms after its fix (IPVS syncs walk every Service) |
/// | `ipvs_base_ns` | 20 ms | estimate |
/// | `ebpf_entry_ns` | 5 us | estimate: one BPF map update per changed endpoint or frontend |
/// | `ebpf_base_ns` | 1 ms | estimate |
/// | `conntrack_cleanup` | true | kube-proxy pkg/proxy/conntrack/cleanup.go: after a successful sync, UDP entries to endpoints that no longer serve are deleted (TCP never) |
#[derive(Clone, Debug, PartialEq)]
pub struct SyncParams {
    /// minSyncPeriod [ns].
    pub min_sync_ns: u64,
    /// syncPeriod [ns].
    pub sync_period_ns: u64,
    /// Interval between forced full syncs [ns].
    pub full_sync_period_ns: u64,
    /// iptables partial syncs between full ones.
    pub iptables_partial: bool,
    /// iptables-restore time per line written [ns].
    pub iptables_line_ns: u64,
    /// iptables fixed time per sync [ns].
    pub iptables_base_ns: u64,
    /// nftables time per Service port walked [ns].
    pub nft_port_ns: u64,
    /// nftables time per line (rule or element) written [ns].
    pub nft_line_ns: u64,
    /// nftables fixed time per sync [ns].
    pub nft_base_ns: u64,
    /// IPVS time per Service port walked [ns].
    pub ipvs_service_ns: u64,
    /// IPVS fixed time per sync [ns].
    pub ipvs_base_ns: u64,
    /// eBPF time per map entry written [ns].
    pub ebpf_entry_ns: u64,
    /// eBPF fixed time per sync [ns].
    pub ebpf_base_ns: u64,
    /// Whether kube-proxy deletes, after a sync, the UDP conntrack entries
    /// whose DNAT names an endpoint that no longer serves.
    pub conntrack_cleanup: bool,
}

impl Default for SyncParams {
    fn default() -> Self {
        SyncParams {
            min_sync_ns: 1_000_000_000,
            sync_period_ns: 30_000_000_000,
            full_sync_period_ns: 3_600_000_000_000,
            iptables_partial: true,
            iptables_line_ns: 18_000,
            iptables_base_ns: 50_000_000,
            nft_port_ns: 12_000,
            nft_line_ns: 10_000,
            nft_base_ns: 20_000_000,
            ipvs_service_ns: 40_000,
            ipvs_base_ns: 20_000_000,
            ebpf_entry_ns: 5_000,
            ebpf_base_ns: 1_000_000,
            conntrack_cleanup: true,
        }
    }
}
