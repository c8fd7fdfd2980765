//! # emu-engine: the discrete-event core of emu
//!
//! A small, fast, deterministic simulation kernel with no networking
//! vocabulary. A tour:
//!
//! - [`SimTime`] / [`SimDuration`]: integer nanoseconds; no floating clock.
//! - [`EventQueue`]: a total order on events by (time, insertion sequence),
//!   events being small `Copy` records.
//! - [`Scheduler`] and [`Model`]: the loop that owns the clock; models are
//!   state machines that receive `now` and schedule what happens next.
//! - [`rng::Stream`]: one random stream per entity, derived from
//!   (master seed, stable entity id) with SplitMix64, never `DefaultHasher`.
//! - [`Dist`]: constant, uniform, exponential, normal and lognormal
//!   distributions sampled into nanoseconds.
//! - [`Fifo`]: a k-server FIFO resource for anything with capacity.
//! - [`stats`]: HdrHistogram latency recording and simple tallies.
//! - [`Slab`]: an arena of records indexed by `u32`, with reuse.
//! - [`phold`]: the PHOLD benchmark, to compare the engine with others.
#![warn(missing_docs)]

mod dist;
pub mod phold;
pub mod prefetch;
mod queue;
mod resource;
pub mod rng;
mod sim;
mod slab;
pub mod stats;
mod time;

pub use dist::{format_duration, parse_duration, Dist, DistError};
pub use queue::EventQueue;
pub use resource::{Acquire, Fifo, LazyFifo};
pub use sim::{Model, Scheduler};
pub use slab::Slab;
pub use time::{SimDuration, SimTime, HORIZON_NS, MAX_DURATION_NS, MAX_SAMPLE_NS};
