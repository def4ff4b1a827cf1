//! Replicated writes per second and their latency, 1 and 3 nodes, murakami
//! log store against the in-memory one, in the same run.
//!
//! ```text
//! cargo run --release -p murakami-openraft --example bench [-- --reps N --secs S]
//! ```
//!
//! Each measurement starts a fresh cluster in this process (nodes talk over
//! loopback HTTP, as in the example), then for `S` seconds (default 2) runs
//! `W` writers, each calling `client_write` on the leader one write after
//! another (a 64-byte value); a write's latency is from the call to its
//! answer (replicated to a quorum, durable there for murakami, applied on
//! the leader). Two loads: 1 writer (latency alone) and 32 (throughput,
//! openraft batching and murakami's group commit at work). Each figure is
//! the median of `N` repetitions (default 3), with their range.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use murakami_openraft::LogStore;
use murakami_openraft::kv::{Request, TypeConfig};
use murakami_openraft::mem::MemLogStore;
use murakami_openraft::node::{Api, Node};
use openraft::storage::RaftLogStorage;
use tokio::net::TcpListener;

type Failure = Box<dyn std::error::Error>;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Store {
    Murakami,
    Memory,
}

struct Run {
    writes_per_sec: f64,
    p50_us: f64,
    p99_us: f64,
}

async fn start<LS: RaftLogStorage<TypeConfig>>(id: u64, store: LS) -> Result<Node, Failure> {
    Ok(Node::start(id, TcpListener::bind("127.0.0.1:0").await?, store).await?)
}

async fn cluster(store: Store, size: u64, root: &std::path::Path) -> Result<Vec<Node>, Failure> {
    let mut nodes = Vec::new();
    for id in 1..=size {
        nodes.push(match store {
            Store::Murakami => {
                start(id, LogStore::<TypeConfig>::open(root.join(id.to_string()))?).await?
            }
            Store::Memory => start(id, MemLogStore::default()).await?,
        });
    }
    let api = Api::new(nodes[0].addr.clone());
    api.init().await??;
    for node in &nodes[1..] {
        api.add_learner(node.id, &node.addr).await??;
    }
    let members: BTreeSet<u64> = (1..=size).collect();
    api.change_membership(&members).await??;
    Ok(nodes)
}

async fn measure(store: Store, size: u64, writers: usize, secs: f64) -> Result<Run, Failure> {
    let root = tempfile::tempdir()?;
    let nodes = cluster(store, size, root.path()).await?;
    let raft = nodes[0].raft.clone();
    let value = "v".repeat(64);
    for i in 0..200 {
        let set = Request::Set {
            key: format!("warm{i}"),
            value: value.clone(),
        };
        raft.client_write(set).await?;
    }
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let raft = raft.clone();
        let value = value.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = 0u64;
            while Instant::now() < deadline {
                let set = Request::Set {
                    key: format!("w{w}-{i}"),
                    value: value.clone(),
                };
                let t = Instant::now();
                raft.client_write(set).await.map_err(|e| e.to_string())?;
                latencies.push(t.elapsed());
                i += 1;
            }
            Ok::<_, String>(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    for node in nodes {
        node.stop().await?;
    }
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
    Ok(Run {
        writes_per_sec: latencies.len() as f64 / elapsed,
        p50_us: at(0.50),
        p99_us: at(0.99),
    })
}

fn median_range(mut xs: Vec<f64>) -> String {
    xs.sort_by(f64::total_cmp);
    format!(
        "{:>9.0} [{:.0}–{:.0}]",
        xs[xs.len() / 2],
        xs[0],
        xs[xs.len() - 1]
    )
}

fn arg(args: &[String], name: &str, default: f64) -> f64 {
    args.windows(2)
        .find(|w| w[0] == name)
        .and_then(|w| w[1].parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().collect();
    let reps = arg(&args, "--reps", 3.0) as usize;
    let secs = arg(&args, "--secs", 2.0);
    let configs = [(1, 1), (3, 1), (1, 32), (3, 32)];
    let stores = [Store::Murakami, Store::Memory];
    let mut results: Vec<Vec<Run>> = (0..configs.len() * stores.len())
        .map(|_| Vec::new())
        .collect();
    // Repetitions outermost, so the machine's slow spells spread over
    // every configuration instead of landing on one.
    for rep in 0..reps {
        for (c, &(size, writers)) in configs.iter().enumerate() {
            for (s, &store) in stores.iter().enumerate() {
                let run = measure(store, size, writers, secs).await?;
                eprintln!(
                    "rep {rep}: {store:?}, {size} node(s), {writers} writer(s): {:.0} writes/s, p50 {:.0} µs, p99 {:.0} µs",
                    run.writes_per_sec, run.p50_us, run.p99_us
                );
                results[c * stores.len() + s].push(run);
            }
        }
    }
    println!("replicated writes, median of {reps} runs of {secs} s [min–max]; latency in µs");
    println!(
        "| store    | nodes | writers |   writes/s [range]      |   p50 [range]          |   p99 [range]           |"
    );
    println!(
        "|----------|-------|---------|-------------------------|------------------------|-------------------------|"
    );
    for (c, &(size, writers)) in configs.iter().enumerate() {
        for (s, &store) in stores.iter().enumerate() {
            let runs = &results[c * stores.len() + s];
            println!(
                "| {:<8} | {size:>5} | {writers:>7} | {} | {} | {} |",
                format!("{store:?}"),
                median_range(runs.iter().map(|r| r.writes_per_sec).collect()),
                median_range(runs.iter().map(|r| r.p50_us).collect()),
                median_range(runs.iter().map(|r| r.p99_us).collect()),
            );
        }
    }
    Ok(())
}
