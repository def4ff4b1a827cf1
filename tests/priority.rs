//! The segment-preparing thread runs in the scheduling class the options
//! ask for. Its own test binary (one process, one test), so that the only
//! preparing thread in the process is the one under test.

use std::fs;

use murakami::{BackgroundPriority, Log, Options};

/// Linux's `SCHED_OTHER` and `SCHED_IDLE`.
const SCHED_OTHER: u32 = 0;
const SCHED_IDLE: u32 = 5;

/// The scheduling policy of every thread of this process whose name starts
/// with `name` (the kernel keeps 15 bytes of a thread's name).
fn policies_of(name: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for task in fs::read_dir("/proc/self/task").expect("list threads") {
        let dir = task.expect("thread entry").path();
        let Ok(comm) = fs::read_to_string(dir.join("comm")) else {
            continue; // the thread ended meanwhile
        };
        if !name.starts_with(comm.trim_end()) {
            continue;
        }
        let stat = fs::read_to_string(dir.join("stat")).expect("read stat");
        // Fields after the parenthesised name start at field 3 (state);
        // the policy is field 41.
        let after_name = &stat[stat.rfind(')').expect("name in stat") + 2..];
        let policy = after_name
            .split(' ')
            .nth(41 - 3)
            .expect("policy field")
            .parse()
            .expect("numeric policy");
        found.push(policy);
    }
    found
}

/// Opens a log with `priority`, appends until it rolls (the roll takes a
/// segment the thread prepared, so the thread has started and chosen its
/// class), and returns the preparing thread's policy.
fn preparer_policy(priority: Option<BackgroundPriority>) -> u32 {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut options = Options::default().segment_size(4096).max_record_size(1024);
    if let Some(priority) = priority {
        options = options.background_priority(priority);
    }
    let (mut writer, _reader) = Log::open(dir.path(), options).expect("open");
    let files = || fs::read_dir(dir.path()).expect("list").count();
    let before = files();
    let record = [7u8; 1000];
    for _ in 0..16 {
        writer.append(&record).expect("append");
    }
    assert!(files() > before, "16 records of 1000 B rolled a 4 KiB log");
    let policies = policies_of("murakami-prepare");
    assert_eq!(policies.len(), 1, "one preparing thread: {policies:?}");
    writer.close().expect("close");
    policies[0]
}

#[test]
fn the_preparing_thread_runs_in_the_class_the_options_ask_for() {
    assert_eq!(preparer_policy(None), SCHED_IDLE, "idle by default");
    assert_eq!(
        preparer_policy(Some(BackgroundPriority::Idle)),
        SCHED_IDLE,
        "idle when asked"
    );
    assert_eq!(
        preparer_policy(Some(BackgroundPriority::Normal)),
        SCHED_OTHER,
        "normal when asked"
    );
    assert!(
        policies_of("murakami-prepare").is_empty(),
        "closing the writer ends its preparing thread"
    );
}
