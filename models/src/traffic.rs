//! Traffic: flows of requests from clients to targets, and the servers
//! that answer them.
//!
//! A flow is HTTP-like request/response over TCP: a client opens a
//! connection (resolving a name first when the target is one), sends a
//! request of `request_bytes`, the server works on it (its service-time
//! distribution, at most `concurrency` at once, FIFO queue), and answers
//! with `response_bytes`. With `keep_alive` a connection is reused for the
//! next request of the same client; without it each request pays DNS, the
//! TCP handshake and kube-proxy's first-packet cost.

use emu_engine::Dist;

use crate::cluster::Origin;
use crate::ids::{NodeId, PodId, SpId, SvcId};

/// Who sends a flow's requests.
#[derive(Clone, Debug, PartialEq)]
pub enum Client {
    /// Containers in these pods (one pod is picked per request); shared,
    /// since many flows often draw from the same large set.
    Pods(std::sync::Arc<[PodId]>),
    /// Clients outside the cluster, with addresses from 198.18.0.0/15
    /// (RFC 2544's benchmarking block).
    External(u32),
}

/// Where a flow's requests go.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    /// `localhost:port`: another container of the client's own pod.
    Localhost(u16),
    /// A pod IP and port, directly.
    Pod {
        /// The pod.
        pod: PodId,
        /// Port.
        port: u16,
    },
    /// A DNS name and port, resolved through cluster DNS per connection.
    Name {
        /// The name as the client writes it (`myservice`, `svc.ns`, FQDN).
        name: String,
        /// Port.
        port: u16,
    },
    /// A ClusterIP and port given literally.
    ServiceIp {
        /// The Service.
        service: SvcId,
        /// Port.
        port: u16,
    },
    /// A node IP and node port; `node: None` spreads connections uniformly
    /// over all nodes (the seed's `<NodeIP>`).
    NodePort {
        /// The node, or any.
        node: Option<NodeId>,
        /// The node port.
        port: u16,
    },
    /// An HTTP host and path served through the ingress controller: the
    /// connection goes to the controller's Service (its load balancer, or a
    /// random node's node port) and the controller proxies to `backend`.
    Ingress {
        /// The controller's Service.
        service: SvcId,
        /// The controller's Service port (80).
        port: u16,
        /// The backend Service port the Ingress rules route to; `None`: 404.
        backend: Option<SpId>,
    },
    /// A LoadBalancer Service's load-balancer IP and Service port.
    LoadBalancer {
        /// The Service.
        service: SvcId,
        /// The Service port.
        port: u16,
    },
}

/// How requests arrive.
#[derive(Clone, Debug, PartialEq)]
pub enum Arrivals {
    /// Open loop: Poisson arrivals at `rate_per_s` requests per second,
    /// whatever the responses do.
    Open {
        /// Mean arrival rate [requests/s].
        rate_per_s: f64,
    },
    /// Closed loop: `clients` users, each sending its next request
    /// `think` after the previous one ended.
    Closed {
        /// Concurrent users.
        clients: u32,
        /// Think time between a response and the next request.
        think: Dist,
    },
}

/// A flow as the scenario declares it, resolved to cluster indices.
#[derive(Clone, Debug, PartialEq)]
pub struct Flow {
    /// Where it was declared.
    pub origin: Origin,
    /// Name, unique in the scenario; the key of every output row.
    pub name: String,
    /// Senders.
    pub client: Client,
    /// Destination.
    pub target: Target,
    /// Arrival process.
    pub arrivals: Arrivals,
    /// Stop after this many requests.
    pub requests: Option<u64>,
    /// Stop issuing requests this long after `start_ns` [ns].
    pub duration_ns: Option<u64>,
    /// First request no earlier than this [ns].
    pub start_ns: u64,
    /// Request payload [bytes].
    pub request_bytes: u32,
    /// Response payload [bytes].
    pub response_bytes: u32,
    /// Reuse connections.
    pub keep_alive: bool,
    /// A request not answered within this is failed as `timeout` [ns].
    pub timeout_ns: u64,
    /// Kept-alive connections older than this [ns] are closed after
    /// their request and reopened (gRPC's MAX_CONNECTION_AGE); `None`: never.
    pub max_connection_age_ns: Option<u64>,
}

/// The application behind a port on a set of pods.
#[derive(Clone, Debug, PartialEq)]
pub struct Server {
    /// Pods it runs in.
    pub pods: Vec<PodId>,
    /// The port it serves.
    pub port: u16,
    /// Work per request.
    pub service_time: Dist,
    /// Requests worked on at once per pod (0: unlimited).
    pub concurrency: u32,
    /// Requests waiting per pod beyond which new ones get an error
    /// (`u32::MAX`: unbounded).
    pub queue_limit: u32,
}

/// Why a request failed: the columns of `failures.csv`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Failure {
    /// The Service had no endpoints: kube-proxy's REJECT rule answered.
    NoEndpoints = 0,
    /// The name did not resolve.
    Nxdomain,
    /// Nothing listened on the destination port: RST.
    ConnectionRefused,
    /// No response within the flow's timeout.
    Timeout,
    /// The server's queue was full.
    QueueFull,
    /// A Local traffic policy found no endpoint on the node: the packets
    /// were dropped and the client gave up at its timeout.
    NoLocalEndpoint,
    /// No Ingress rule matched the host and path: the controller's 404.
    NoRoute,
    /// A node's conntrack table was full: the new flow's packet was
    /// dropped and the client gave up at its timeout.
    ConntrackFull,
    /// IPVS found no destination: every real server it could choose had
    /// weight 0, and the node answered ICMP port unreachable.
    NoDestination,
    /// The server pod went away with the connection open (killed, or
    /// exited): its node answered the next packet with a RST. Only a
    /// changing cluster has it.
    ConnectionReset,
    /// A SYN was DNATed (by rules not yet synced) to an address no pod
    /// holds: ARP failed and the node answered ICMP host unreachable. Only
    /// a changing cluster has it.
    HostUnreachable,
    /// NetworkPolicy dropped the connection's SYN (or the ingress
    /// controller's upstream connect): the client gave up after its
    /// retransmissions. Only a cluster with policies has it.
    PolicyDenied,
    /// NetworkPolicy dropped the DNS queries (an egress policy with no
    /// rule for port 53 to the cluster DNS, or an ingress policy on
    /// CoreDNS): the name never resolved. Only a cluster with policies has
    /// it.
    DnsPolicyDenied,
}

/// Number of failure reasons.
pub const FAILURES: usize = 13;

impl Failure {
    /// Every reason, in output order.
    pub const ALL: [Failure; FAILURES] = [
        Failure::NoEndpoints,
        Failure::Nxdomain,
        Failure::ConnectionRefused,
        Failure::Timeout,
        Failure::QueueFull,
        Failure::NoLocalEndpoint,
        Failure::NoRoute,
        Failure::ConntrackFull,
        Failure::NoDestination,
        Failure::ConnectionReset,
        Failure::HostUnreachable,
        Failure::PolicyDenied,
        Failure::DnsPolicyDenied,
    ];

    /// The reasons only a changing cluster produces (`failures.csv` lists
    /// them for runs with `[[changes]]` only, so a static run's files stay
    /// as they were).
    pub const DYNAMIC: [Failure; 2] = [Failure::ConnectionReset, Failure::HostUnreachable];

    /// The reasons only a cluster with NetworkPolicies produces (listed
    /// for such runs only).
    pub const POLICY: [Failure; 2] = [Failure::PolicyDenied, Failure::DnsPolicyDenied];

    /// The name used in output files.
    pub fn name(self) -> &'static str {
        match self {
            Failure::NoEndpoints => "no_endpoints",
            Failure::Nxdomain => "nxdomain",
            Failure::ConnectionRefused => "connection_refused",
            Failure::Timeout => "timeout",
            Failure::QueueFull => "queue_full",
            Failure::NoLocalEndpoint => "no_local_endpoint",
            Failure::NoRoute => "no_route",
            Failure::ConntrackFull => "conntrack_full",
            Failure::NoDestination => "no_destination",
            Failure::ConnectionReset => "connection_reset",
            Failure::HostUnreachable => "host_unreachable",
            Failure::PolicyDenied => "policy_denied",
            Failure::DnsPolicyDenied => "dns_policy_denied",
        }
    }
}
