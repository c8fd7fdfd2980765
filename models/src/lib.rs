//! # emu-models: Kubernetes and Linux networking on top of emu-engine
//!
//! - [`addr`]: IPv4 addresses and CIDR blocks.
//! - [`cluster`]: nodes, namespaces, pods, Services; IPAM, placement,
//!   ClusterIP/NodePort allocation, endpoints.
#![warn(missing_docs)]

pub mod addr;
pub mod cluster;
pub mod datapath;
pub mod dns;
pub mod node;
pub mod proxy;
pub mod traffic;
pub mod world;
