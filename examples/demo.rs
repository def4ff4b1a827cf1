//! A tour of murakami: append while a reader follows the tail on another
//! thread, sync, then crash a producer process with SIGKILL and recover.
//!
//! ```text
//! cargo run --release --example demo [DIR]
//! ```
//!
//! With no `DIR`, the log lives in a temporary directory that is removed at
//! the end.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::Instant;

use murakami::{Log, Options};

const RECORDS: u64 = 500_000;
const SIZE: usize = 256;

/// Record `i`'s bytes: its offset, repeated, so any misplaced or torn
/// record is caught.
fn record(i: u64, buf: &mut [u8; SIZE]) {
    for chunk in buf.chunks_exact_mut(8) {
        chunk.copy_from_slice(&i.to_le_bytes());
    }
}

fn check(i: u64, payload: &[u8]) {
    let mut expected = [0u8; SIZE];
    record(i, &mut expected);
    assert_eq!(payload, expected, "record {i} is not what was appended");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 3 && args[1] == "--child" {
        return child(Path::new(&args[2]));
    }
    let tmp;
    let root = match args.get(1) {
        Some(dir) => PathBuf::from(dir),
        None => {
            tmp = tempfile_dir()?;
            tmp.clone()
        }
    };
    let options = Options::default().segment_size(16 << 20);
    tail_while_appending(&root.join("tour"), options.clone())?;
    crash_and_recover(&root.join("crash"), options)?;
    if args.get(1).is_none() {
        std::fs::remove_dir_all(&root)?;
    }
    Ok(())
}

fn tempfile_dir() -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("murakami-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn tail_while_appending(dir: &Path, options: Options) -> murakami::Result<()> {
    println!("== append {RECORDS} x {SIZE} B while a reader follows the tail");
    let _ = std::fs::remove_dir_all(dir);
    let (mut writer, reader) = Log::open(dir, options.clone())?;
    let follower = thread::spawn(move || -> murakami::Result<u64> {
        let mut cursor = reader.cursor(0)?;
        let mut seen = 0;
        while seen < RECORDS {
            match cursor.next_ref()? {
                Some(rec) => {
                    check(rec.offset, rec.payload);
                    seen += 1;
                }
                None => std::hint::spin_loop(),
            }
        }
        Ok(seen)
    });
    let mut buf = [0u8; SIZE];
    let started = Instant::now();
    for i in 0..RECORDS {
        record(i, &mut buf);
        writer.append(&buf)?;
    }
    let appending = started.elapsed();
    let seen = follower.join().expect("reader thread")?;
    let caught_up = started.elapsed();
    let synced = Instant::now();
    let durable = writer.sync()?;
    println!(
        "   appended in {:.1} ms ({:.0} ns/record, with a reader spinning on the other core)",
        appending.as_secs_f64() * 1e3,
        appending.as_nanos() as f64 / RECORDS as f64
    );
    println!(
        "   reader verified {seen} records byte for byte, caught up {:.1} ms after the first append",
        caught_up.as_secs_f64() * 1e3
    );
    println!(
        "   sync: durable offset {durable} in {:.1} ms",
        synced.elapsed().as_secs_f64() * 1e3
    );
    writer.close()?;
    let (writer, reader) = Log::open(dir, options)?;
    let report = writer.recovery_report();
    println!(
        "   reopened: clean shutdown {}, {} segments, next offset {}",
        report.clean_shutdown, report.segments, report.next_offset
    );
    let mut buf = Vec::new();
    let started = Instant::now();
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..RECORDS {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let offset = state % RECORDS;
        reader.read_into(offset, &mut buf)?;
        check(offset, &buf);
    }
    println!(
        "   {RECORDS} random reads, each checked: {:.0} ns/read",
        started.elapsed().as_nanos() as f64 / RECORDS as f64
    );
    drop(writer);
    Ok(())
}

/// The child: appends forever, syncing every 1000 records and reporting
/// each acknowledged durable offset on stdout, until it is killed.
fn child(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let (mut writer, _) = Log::open(dir, Options::default().segment_size(16 << 20))?;
    let mut buf = [0u8; SIZE];
    let mut i = writer.next_offset();
    loop {
        record(i, &mut buf);
        writer.append(&buf)?;
        i += 1;
        if i % 1000 == 0 {
            println!("{}", writer.sync()?);
        }
    }
}

fn crash_and_recover(dir: &Path, options: Options) -> Result<(), Box<dyn std::error::Error>> {
    println!("== crash: a child process appends and syncs; SIGKILL it mid-stream");
    let _ = std::fs::remove_dir_all(dir);
    for round in 1..=3 {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("--child")
            .arg(dir)
            .stdout(Stdio::piped())
            .spawn()?;
        let lines = BufReader::new(child.stdout.take().expect("piped"));
        let mut acknowledged = 0;
        for line in lines.lines().take(40 * round) {
            acknowledged = line?.trim().parse()?;
        }
        child.kill()?;
        child.wait()?;
        let (writer, reader) = Log::open(dir, options.clone())?;
        let report = writer.recovery_report().clone();
        let next = reader.next_offset();
        let mut cursor = reader.cursor(0)?;
        let mut checked = 0;
        while let Some(rec) = cursor.next_ref()? {
            check(rec.offset, rec.payload);
            checked += 1;
        }
        assert!(next >= acknowledged, "lost durable records");
        println!(
            "   round {round}: killed after durable offset {acknowledged}; recovered {next} records \
             ({} past the acknowledged point), all {checked} verified; clean shutdown: {}, cut: {}",
            next - acknowledged,
            report.clean_shutdown,
            match &report.cut {
                Some(cut) => format!("at {} ({:?})", cut.offset, cut.reason),
                None => "none".to_string(),
            }
        );
        drop(writer);
    }
    println!("   every acknowledged record survived every kill");
    Ok(())
}
