//! The key-value service by hand.
//!
//! ```text
//! # one process per node (each in its own terminal):
//! cargo run -p murakami-openraft --example kv -- node 1 127.0.0.1:21001 /tmp/kv/1
//! cargo run -p murakami-openraft --example kv -- node 2 127.0.0.1:21002 /tmp/kv/2
//! cargo run -p murakami-openraft --example kv -- node 3 127.0.0.1:21003 /tmp/kv/3
//! # then, from another one:
//! cargo run -p murakami-openraft --example kv -- client 127.0.0.1:21001 init
//! cargo run -p murakami-openraft --example kv -- client 127.0.0.1:21001 add-learner 2 127.0.0.1:21002
//! cargo run -p murakami-openraft --example kv -- client 127.0.0.1:21001 add-learner 3 127.0.0.1:21003
//! cargo run -p murakami-openraft --example kv -- client 127.0.0.1:21001 members 1,2,3
//! cargo run -p murakami-openraft --example kv -- client 127.0.0.1:21001 write color blue
//! cargo run -p murakami-openraft --example kv -- client 127.0.0.1:21003 read color
//! cargo run -p murakami-openraft --example kv -- client 127.0.0.1:21002 metrics
//! # or all of it, three nodes in this one process, narrated:
//! cargo run -p murakami-openraft --example kv -- demo
//! ```

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use murakami_openraft::LogStore;
use murakami_openraft::kv::TypeConfig;
use murakami_openraft::node::{Api, Node};
use tokio::net::TcpListener;

type Failure = Box<dyn std::error::Error>;

const USAGE: &str = "usage: kv node ID HOST:PORT DIR | kv client HOST:PORT (init | add-learner ID HOST:PORT | members ID,ID,... | write KEY VALUE | read KEY | metrics) | kv demo";

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args[..] {
        ["node", id, addr, dir] => node(id.parse()?, addr, dir).await,
        ["client", addr, ref command @ ..] => client(&Api::new(addr), command).await,
        ["demo"] => demo().await,
        _ => Err(USAGE.into()),
    }
}

async fn start(id: u64, addr: &str, dir: &str) -> Result<Node, Failure> {
    let store = LogStore::<TypeConfig>::open(dir)?;
    Ok(Node::start(id, TcpListener::bind(addr).await?, store).await?)
}

/// Runs one node until the process is stopped (Ctrl-C is a crash it
/// recovers from: every write it acknowledged is in its log).
async fn node(id: u64, addr: &str, dir: &str) -> Result<(), Failure> {
    let node = start(id, addr, dir).await?;
    println!("node {id} serving on {} with its log in {dir}", node.addr);
    std::future::pending::<()>().await;
    Ok(())
}

async fn client(api: &Api, command: &[&str]) -> Result<(), Failure> {
    let answer = match command {
        ["init"] => format!("{:?}", api.init().await?),
        ["add-learner", id, addr] => format!("{:?}", api.add_learner(id.parse()?, addr).await?),
        ["members", ids] => {
            let ids: BTreeSet<u64> = ids.split(',').map(str::parse).collect::<Result<_, _>>()?;
            format!("{:?}", api.change_membership(&ids).await?)
        }
        ["write", key, value] => format!("{:?}", api.write(key, value).await?),
        ["read", key] => format!("{:?}", api.read(key).await?),
        ["metrics"] => format!("{:#?}", api.metrics().await?),
        _ => return Err(USAGE.into()),
    };
    println!("{answer}");
    Ok(())
}

async fn eventually<T>(
    what: &str,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> Result<T, Failure> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Some(value) = check().await {
            return Ok(value);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(format!("timed out waiting for {what}").into())
}

/// Three nodes in this process: the whole story, told as it goes.
async fn demo() -> Result<(), Failure> {
    let root = std::env::temp_dir().join(format!("murakami-kv-demo-{}", std::process::id()));
    let dirs: Vec<String> = (1..=3)
        .map(|i| root.join(i.to_string()).display().to_string())
        .collect();
    let mut nodes = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let node = start(i as u64 + 1, "127.0.0.1:0", dir).await?;
        println!("node {} on {}, log in {dir}", node.id, node.addr);
        nodes.push(Some(node));
    }
    let addrs: Vec<String> = nodes.iter().flatten().map(|n| n.addr.clone()).collect();
    let apis: Vec<Api> = addrs.iter().map(Api::new).collect();
    apis[0].init().await??;
    apis[0].add_learner(2, &addrs[1]).await??;
    apis[0].add_learner(3, &addrs[2]).await??;
    apis[0].change_membership(&[1, 2, 3].into()).await??;
    println!("cluster of 3: node 1 leads");
    for k in 0..10 {
        apis[0].write(&format!("k{k}"), &format!("v{k}")).await??;
    }
    for api in &apis {
        eventually("k9 everywhere", async || {
            (api.read("k9").await.ok()?.as_deref() == Some("v9")).then_some(())
        })
        .await?;
    }
    println!("10 writes on the leader, read back on every node");
    nodes[0].take().expect("node 1").stop().await?;
    println!("node 1 stopped");
    let leader = eventually("a new leader", async || {
        apis[1]
            .metrics()
            .await
            .ok()?
            .current_leader
            .filter(|l| *l != 1)
    })
    .await?;
    println!("node {leader} leads now");
    apis[leader as usize - 1]
        .write("after", "the kill")
        .await??;
    nodes[0] = Some(start(1, &addrs[0], &dirs[0]).await?);
    eventually("node 1 to catch up", async || {
        (apis[0].read("after").await.ok()?.as_deref() == Some("the kill")).then_some(())
    })
    .await?;
    println!(
        "node 1 restarted from its own log and caught up: after = {:?}",
        apis[0].read("after").await?
    );
    for node in nodes.into_iter().flatten() {
        node.stop().await?;
    }
    std::fs::remove_dir_all(&root)?;
    Ok(())
}
