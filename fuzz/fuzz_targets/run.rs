//! Fuzz target: a bounded run of whatever loads (each flow cut to 50
//! requests and one simulated second; runs of more than 200,000 estimated
//! events skipped) must never panic, and the world must accept what the
//! loader accepted.
#![no_main]

mod common;

use emu::scenario::limits;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some(mut loaded) = common::load(data) else { return };
    for p in &mut loaded.points {
        for f in &mut p.prepared.flows {
            f.requests = Some(f.requests.unwrap_or(50).min(50));
            f.duration_ns = f.duration_ns.map(|d| d.min(1_000_000_000));
        }
    }
    let points: Vec<&emu::scenario::Prepared> = loaded.points.iter().map(|p| &p.prepared).collect();
    let e = limits::estimate(&points, 1, loaded.base.replications, 1);
    if e.events > 200_000 || e.runs > 4 {
        return;
    }
    for p in points {
        emu_models::world::simulate(&p.cluster, p.params.clone(), p.flows.clone(), p.servers.clone())
            .expect("the world accepts what the loader accepted");
    }
});
