//! Helpers shared by the benchmarks. Everything that needs no criterion
//! lives in files the report (`bench/`) includes too:
//!
//! - `fixtures.rs`: temporary logs under `/tmp`, payloads, permutations,
//!   walks;
//! - `process.rs`: helper processes, the shared clock, per-thread counters;
//! - `workloads.rs`: the workloads themselves (read fixtures, readers beside
//!   a producer, many appending threads, the msync floor, recovery
//!   snapshots, retention logs, append latencies);
//! - `tail.rs`: append-to-tailing-reader latency, in a thread or in another
//!   process.
//!
//! This file adds the short criterion settings every bench file starts
//! from. Each bench file includes this module with `mod common;` and uses a
//! subset of it.
#![allow(dead_code)]

pub mod fixtures;
pub mod process;
pub mod tail;
pub mod workloads;

#[allow(unused_imports)] // each bench uses a subset
pub use fixtures::*;

use std::time::Duration;

use criterion::Criterion;

/// Criterion settings short enough for `cargo bench` to finish in minutes
/// on two noisy cores; command-line flags still override them.
pub fn criterion() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}
