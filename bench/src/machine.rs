//! The machine the report ran on, and the floors measured in the same run:
//! a raw `fdatasync`, a range `msync`, memcpy bandwidth, a bare prefaulted
//! append loop. Every other figure can be read against these.

use std::hint::black_box;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::fixtures::{frame_len, payload, tempdir};
use crate::stats::{self, Reps, Table};
use crate::workloads::{MsyncFloor, fallocated_file, percentile, prefaulted_map};
use crate::{Out, Plan, progress};

/// The record sizes of the buffered-append rows.
pub const SIZES: [usize; 4] = [64, 256, 512, 1024];

/// The floors later sections compare with.
pub struct Floors {
    /// Median of single range `msync`s of a 256 B record's frame, ns.
    pub msync_ns: f64,
    /// Median of single 264 B writes + `fdatasync`, ns.
    pub fdatasync_ns: f64,
    /// The bare prefaulted append loop, ns per record, by [`SIZES`].
    pub bare_ns: Vec<Reps>,
}

/// Measures and prints the machine section.
pub fn section(plan: &Plan, out: &mut Out) -> Floors {
    progress("machine");
    let dir = tempdir();
    let mut table = Table::new(&["item", "figure"]);
    table.row(vec!["CPU".into(), cpu_model()]);
    table.row(vec!["cores".into(), cores()]);
    table.row(vec![
        "kernel".into(),
        read_trim("/proc/sys/kernel/osrelease"),
    ]);
    table.row(vec![
        "filesystem of the logs' directory".into(),
        filesystem(dir.path()),
    ]);
    table.row(vec!["load average at the start".into(), load_average()]);
    drop(dir);

    let fdatasync = fdatasync_latencies(plan.sync_samples);
    let msync = msync_latencies(plan.sync_samples);
    let quartiles = |sorted: &[u64]| {
        format!(
            "{} (p25–p75 {}–{}; {} single syncs)",
            stats::ns(percentile(sorted, 0.5) as f64),
            stats::ns(percentile(sorted, 0.25) as f64),
            stats::ns(percentile(sorted, 0.75) as f64),
            sorted.len()
        )
    };
    table.row(vec![
        "write 264 B + `fdatasync`, fallocated file".into(),
        quartiles(&fdatasync),
    ]);
    table.row(vec![
        "range `msync(MS_SYNC)` of a fresh 288 B frame, prefaulted map".into(),
        quartiles(&msync),
    ]);
    let memcpy = memcpy_gb_s(plan.reps.max(5));
    table.row(vec![
        "memcpy, 64 MiB buffer to buffer".into(),
        format!("{} GB/s", stats::num_spread(&memcpy)),
    ]);
    let mut bare_ns = Vec::new();
    for len in SIZES {
        let reps = Reps::of((0..plan.reps).map(|_| bare_append_ns(len, plan.bare_file)));
        table.row(vec![
            format!("bare prefaulted append loop, {len} B (8 B header + payload per record)"),
            format!("{} per record", stats::ns_spread(&reps)),
        ]);
        bare_ns.push(reps);
    }
    out.table(
        "## The machine (measured in this run)",
        "The floors every later figure stands on. Sync rows: the median of single \
         operations with their quartiles. memcpy and the bare loop: the median of the \
         repetitions, lowest–highest in brackets. The bare loop writes records into a \
         fallocated file mapped shared and faulted in with `MADV_POPULATE_WRITE` \
         beforehand: no CRC, no index, no page faults, no rolls.",
        &table,
    );
    Floors {
        msync_ns: percentile(&msync, 0.5) as f64,
        fdatasync_ns: percentile(&fdatasync, 0.5) as f64,
        bare_ns,
    }
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path).map_or_else(|e| format!("unknown ({e})"), |s| s.trim().into())
}

fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    info.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or_else(|| "unknown".into(), |(_, v)| v.trim().into())
}

fn cores() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let listed = info.lines().filter(|l| l.starts_with("processor")).count();
    let usable = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{listed} in /proc/cpuinfo, {usable} available to this process")
}

fn load_average() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    load.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The mount that holds `path` (the longest mount point above it):
/// device, type, options.
fn filesystem(path: &Path) -> String {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 4 && path.starts_with(f[1])).then(|| (f[1].len(), f))
        })
        .max_by_key(|(len, _)| *len)
        .map_or_else(
            || "unknown".into(),
            |(_, f)| format!("{} on {} ({}, {})", f[2], f[1], f[0], f[3]),
        )
}

/// Latencies (ns, sorted) of `n` 264 B writes, each followed by an
/// `fdatasync`, appended one after another into a fallocated file.
fn fdatasync_latencies(n: usize) -> Vec<u64> {
    let dir = tempdir();
    let file = fallocated_file(dir.path(), "fdatasync", 64 << 20);
    file.sync_all().expect("fsync");
    let record = payload(264);
    let mut times: Vec<u64> = (0..n as u64)
        .map(|i| {
            let start = Instant::now();
            file.write_all_at(&record, i * 264).expect("write");
            file.sync_data().expect("fdatasync");
            start.elapsed().as_nanos() as u64
        })
        .collect();
    times.sort_unstable();
    times
}

/// Latencies (ns, sorted) of `n` range msyncs of fresh 288 B frames (a
/// 256 B record's), the floor under a sync after every record.
fn msync_latencies(n: usize) -> Vec<u64> {
    let mut floor = MsyncFloor::new(frame_len(256) as usize, false);
    let mut times: Vec<u64> = (0..n as u64)
        .map(|i| floor.one(i).as_nanos() as u64)
        .collect();
    times.sort_unstable();
    times
}

/// memcpy bandwidth, GB/s, one copy of 64 MiB per repetition.
fn memcpy_gb_s(reps: usize) -> Reps {
    const LEN: usize = 64 << 20;
    let src = payload(LEN);
    let mut dst = vec![1u8; LEN];
    Reps::of((0..reps).map(|_| {
        let start = Instant::now();
        dst.copy_from_slice(black_box(&src));
        black_box(&mut dst);
        LEN as f64 / start.elapsed().as_nanos() as f64
    }))
}

/// The bare loop: records of `len` bytes (a 4-byte length, a 4-byte
/// sequence number, the payload, padded to 8) written one after another
/// into a fresh fallocated file of `file_len` bytes, mapped shared and
/// faulted in with `MADV_POPULATE_WRITE` first; ns per record.
fn bare_append_ns(len: usize, file_len: usize) -> f64 {
    let dir = tempdir();
    let file = fallocated_file(dir.path(), "bare", file_len);
    let map = prefaulted_map(&file, file_len);
    let body = payload(len);
    let frame = (8 + len).next_multiple_of(8);
    let records = file_len / frame;
    let base = map.as_mut_ptr();
    let start = Instant::now();
    for i in 0..records {
        let mut header = [0u8; 8];
        header[..4].copy_from_slice(&(len as u32).to_le_bytes());
        header[4..].copy_from_slice(&(i as u32).to_le_bytes());
        // SAFETY: record `i` ends at `(i + 1) * frame <= file_len`, within
        // the writable map, which outlives the loop; only this thread
        // touches it.
        unsafe {
            let at = base.add(i * frame);
            std::ptr::copy_nonoverlapping(header.as_ptr(), at, 8);
            std::ptr::copy_nonoverlapping(body.as_ptr(), at.add(8), len);
        }
    }
    let elapsed: Duration = start.elapsed();
    black_box(&map);
    elapsed.as_nanos() as f64 / records as f64
}
