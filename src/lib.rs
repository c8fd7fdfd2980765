//! # emu: the scenario loader, runs and results of the `emu` binary
//!
//! The binary (`src/main.rs`) is the command line; this library is
//! everything it calls, so that tests and fuzz targets (`fuzz/`) can load
//! and run scenarios in-process:
//!
//! - [`scenario`]: TOML and YAML in, validated sweep points out
//!   ([`scenario::load`], [`scenario::load_str`]), with the limits of
//!   [`scenario::limits`].
//! - [`report`]: runs every point and writes the CSV files.
//! - [`outdir`]: what may be replaced by results, written atomically.
//! - [`reach`]: the NetworkPolicy reachability matrix (`emu reach`).
//! - [`trace`]: one request's walk, hop by hop (`emu trace`).
//! - [`plot`]: the report of a run, SVG charts and a page (`emu plot`).

#![warn(missing_docs)]

pub mod outdir;
pub mod plot;
pub mod reach;
pub mod report;
pub mod scenario;
pub mod trace;
