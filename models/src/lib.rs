//! # emu-models: Kubernetes and Linux networking on top of emu-engine
//!
//! - [`addr`]: IPv4 addresses and CIDR blocks.
//! - [`cluster`]: nodes, namespaces, pods, Services; IPAM, placement,
//!   ClusterIP/NodePort allocation, endpoints.
//! - [`ids`]: typed indices of nodes, pods, Services, Service ports,
//!   endpoints, connections and requests.
//! - [`dynamics`]: a cluster that changes: the timeline, pod lifecycles,
//!   rollouts, kube-proxy sync costs.
//! - [`params`]: range checks of every model parameter.
#![warn(missing_docs)]

pub mod addr;
pub mod cluster;
pub mod datapath;
pub mod dns;
pub mod dynamics;
pub mod hash;
pub mod ids;
pub mod node;
pub mod params;
pub mod policy;
pub mod proxy;
pub mod traffic;
pub mod world;
