//! End-to-end tests of the `emu` binary: shipped scenarios, behaviour of
//! the four paths, load balancing, determinism and bad input. One test
//! binary, one module per topic.

mod behaviour;
mod capacity;
mod changes_input;
mod dns;
mod docs;
mod dynamics;
mod engine;
mod errors;
mod host_network;
mod manifests;
mod netpol;
mod paths;
mod plot;
mod policy;
mod robustness;
mod rules;
mod services;
mod shard;
mod slurm;
mod summary;
mod trace;
mod util;
mod validation;
