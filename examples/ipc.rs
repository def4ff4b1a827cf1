//! Two processes, one log: a writer appends, readers in other processes
//! follow it through the files.
//!
//! ```text
//! cargo run --release --example ipc -- write /tmp/ipc-log   # terminal 1
//! cargo run --release --example ipc -- read /tmp/ipc-log    # terminal 2 (and 3, ...)
//! ```
//!
//! The writer appends a message every millisecond for five seconds and
//! closes the log; each reader prints what it receives and how long after
//! the append it had it in hand, and stops once the writer has closed and
//! it has read everything. Readers may start before the writer, and a
//! writer started again carries on where the last one stopped.
#[cfg(feature = "loom")]
fn main() {}

#[cfg(not(feature = "loom"))]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    use std::time::Duration;

    let args: Vec<String> = std::env::args().skip(1).collect();
    let (role, dir) = match args.as_slice() {
        [role, dir] if role == "write" || role == "read" => (role.as_str(), dir.as_str()),
        _ => {
            eprintln!("usage: ipc write DIR | ipc read DIR");
            std::process::exit(2);
        }
    };
    if role == "write" {
        let (mut writer, _) = murakami::Log::open(dir, murakami::Options::default())?;
        let start = writer.next_offset();
        for i in 0..5000u64 {
            let sent = clock_ns();
            writer.append(format!("{sent} message {i}").as_bytes())?;
            std::thread::sleep(Duration::from_millis(1));
        }
        println!("wrote offsets {start}..{}", writer.next_offset());
        writer.close()?;
        return Ok(());
    }
    let reader = murakami::Reader::open(dir)?;
    let mut cursor = reader.cursor(reader.next_offset())?;
    let mut latencies = Vec::new();
    loop {
        match cursor.next_wait(Duration::from_millis(200))? {
            Some(record) => {
                let now = clock_ns();
                let text = String::from_utf8_lossy(record.payload);
                if let Some(sent) = text.split(' ').next().and_then(|t| t.parse::<u64>().ok()) {
                    latencies.push(now.saturating_sub(sent));
                }
                if record.offset % 1000 == 0 {
                    println!("{}: {text}", record.offset);
                }
            }
            // Nothing for 200 ms: stop if the writer is gone for good.
            None if reader.is_closed() && !latencies.is_empty() => break,
            None => {}
        }
    }
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize] as f64 / 1e3;
    println!(
        "read {} records; append to in hand: median {:.1} us, p99 {:.1} us, max {:.1} us",
        latencies.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    );
    Ok(())
}

/// The wall clock in nanoseconds: one clock for every process of the
/// machine (unlike `Instant`, which cannot be sent to another process).
#[cfg(not(feature = "loom"))]
fn clock_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
