//! `murakami stat`, `verify` and `repair`, run as the real binary against
//! real log directories: clean, live (a writer in another process), torn
//! by a SIGKILLed writer, and damaged (bit flips, zeroed sectors, truncated
//! and missing files, foreign files).

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use murakami::{Log, Options};
use serde_json::Value;

#[path = "../../tests/common/mod.rs"]
mod common;
use common::{copy_dir, dir_state as state, frames, segment_files as segments};

const SEG: u64 = 16 * 1024;

fn murakami(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_murakami"))
        .args(args)
        .arg(dir)
        .output()
        .expect("runs")
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited, not killed")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// A failure is one line on stderr, `murakami: ...`, and nothing else.
fn one_line_error(out: &Output, code_: i32, needle: &str) {
    let err = stderr(out);
    assert_eq!(code(out), code_, "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    assert!(err.starts_with("murakami: "), "{err}");
    assert!(err.contains(needle), "{err:?} should say {needle:?}");
    assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"));
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(out)))
}

fn options() -> Options {
    Options::default().segment_size(SEG).prefault(false)
}

fn payload(i: u64) -> Vec<u8> {
    format!("record {i:06} {}", "x".repeat((i % 50) as usize)).into_bytes()
}

/// A log of `n` records in 16 KiB segments, synced every 100 records;
/// closed cleanly when `close`, else left as a crash leaves it (after a
/// final sync, and `tail` more records not synced).
fn make_log(dir: &Path, n: u64, close: bool, tail: u64) {
    let (mut writer, _) = Log::open(dir, options()).unwrap();
    for i in 0..n {
        writer.append(&payload(i)).unwrap();
        if i % 100 == 99 {
            writer.sync().unwrap();
        }
    }
    writer.sync().unwrap();
    for i in n..n + tail {
        writer.append(&payload(i)).unwrap();
    }
    if close {
        writer.close().unwrap();
    } else {
        // What a killed process leaves: no clean marker, the lock gone.
        crash(writer, dir);
    }
}

/// Drops a writer as a killed process would: its files as they are, no
/// clean close. (The writer's threads stay in this test process; the lock
/// goes with the writer's file.)
fn crash(writer: murakami::Writer, dir: &Path) {
    let copy = dir.with_extension("copy");
    copy_dir(dir, &copy);
    drop(writer);
    fs::remove_dir_all(dir).unwrap();
    fs::rename(&copy, dir).unwrap();
}

/// Flips a byte in the payload of the last record of the last segment.
fn tear_last_record(dir: &Path) {
    let last = segments(dir).pop().unwrap();
    let bytes = fs::read(&last).unwrap();
    let (at, _) = *frames(&bytes).last().unwrap();
    flip(&last, at + 40);
}

/// Flips a byte in the fourth record of the second segment.
fn damage_a_sealed_record(dir: &Path) {
    let second = segments(dir)[1].clone();
    let (at, _) = frames(&fs::read(&second).unwrap())[3];
    flip(&second, at + 35);
}

fn flip(path: &Path, at: usize) {
    let mut bytes = fs::read(path).unwrap();
    bytes[at] ^= 0x40;
    fs::write(path, bytes).unwrap();
}

#[test]
fn a_clean_log_is_described_verified_and_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    make_log(&dir, 1000, true, 0);
    let before = state(&dir);

    let out = murakami(&["stat"], &dir);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("closed cleanly"), "{text}");
    assert!(
        text.contains("first 0, next 1000, durable 1000 (1000 records)"),
        "{text}"
    );
    assert!(text.contains("problem     none"), "{text}");
    assert!(text.contains("00000000000000000000.seg"), "{text}");

    let stat = json(&murakami(&["stat", "--json"], &dir));
    assert_eq!(stat["state"], "closed");
    assert_eq!(stat["records"], 1000);
    assert_eq!(stat["durable_offset"], 1000);
    assert!(stat["writer"].is_null() && stat["problem"].is_null());
    let segs = stat["segments"].as_array().unwrap();
    assert_eq!(segs.len(), segments(&dir).len());
    assert!(segs.len() > 2, "small segments: several");
    let held: u64 = segs.iter().map(|s| s["records"].as_u64().unwrap()).sum();
    assert_eq!(held, 1000);
    let mut expected_base = 0;
    for (k, s) in segs.iter().enumerate() {
        assert_eq!(s["base_offset"], expected_base);
        assert_eq!(s["sealed"], k + 1 < segs.len());
        assert_eq!(s["capacity"], SEG);
        assert!(s["oldest"].as_u64().unwrap() <= s["newest"].as_u64().unwrap());
        assert!(s["oldest_time"].as_str().unwrap().ends_with('Z'));
        expected_base += s["records"].as_u64().unwrap();
    }
    assert!(stat["disk_bytes"].as_u64().unwrap() > 0);

    let out = murakami(&["verify"], &dir);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).starts_with("sound: "), "{}", stdout(&out));
    assert_eq!(stderr(&out), "", "no progress drawn off a terminal");
    let verdict = json(&murakami(&["verify", "--json"], &dir));
    assert_eq!(verdict["verdict"], "sound");
    assert_eq!(verdict["records"], 1000);

    let out = murakami(&["repair", "--dry-run"], &dir);
    assert_eq!(code(&out), 0);
    assert!(stdout(&out).contains("nothing to repair"));
    assert_eq!(
        state(&dir),
        before,
        "stat, verify and a dry run change nothing"
    );
}

#[test]
fn bad_directories_get_one_line_and_their_own_exit_code() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing");
    for cmd in ["stat", "verify", "repair"] {
        one_line_error(&murakami(&[cmd], &missing), 4, "no such directory");
        assert!(!missing.exists(), "{cmd} created the directory");
    }
    let empty = tmp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    fs::write(empty.join("notes.txt"), b"not a log").unwrap();
    for cmd in ["stat", "verify", "repair"] {
        one_line_error(&murakami(&[cmd], &empty), 3, "not a murakami log");
    }
    assert_eq!(fs::read_dir(&empty).unwrap().count(), 1, "nothing created");
    let file = empty.join("notes.txt");
    one_line_error(&murakami(&["verify"], &file), 3, "not a directory");
    // Foreign segment files (not murakami's magic) are not a murakami log.
    let foreign = tmp.path().join("foreign");
    fs::create_dir(&foreign).unwrap();
    fs::write(foreign.join("00000000000000000000.seg"), vec![0x5a; 8192]).unwrap();
    let out = murakami(&["verify"], &foreign);
    assert_eq!(code(&out), 3, "{}{}", stdout(&out), stderr(&out));
    // Bad arguments: clap's message, exit 64.
    let out = Command::new(env!("CARGO_BIN_EXE_murakami"))
        .args(["verify", "--no-such-flag"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 64);
}

#[test]
fn a_torn_tail_is_exit_1_and_repair_cuts_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    make_log(&dir, 300, false, 5);
    // A crash tore the last (unsynced) record.
    tear_last_record(&dir);
    let before = state(&dir);

    let out = murakami(&["verify"], &dir);
    assert_eq!(code(&out), 1, "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("torn tail: "), "{text}");
    assert!(text.contains("record offset 304"), "{text}");
    assert!(text.contains("nothing durable is lost"), "{text}");
    let verdict = json(&murakami(&["verify", "--json"], &dir));
    assert_eq!(verdict["problem"]["offset"], 304);
    assert_eq!(verdict["problem"]["torn_tail"], true);
    assert_eq!(verdict["exit_code"], 1);
    let stat = json(&murakami(&["stat", "--json"], &dir));
    assert_eq!(stat["state"], "unclean");
    assert_eq!(stat["next_offset"], 304);

    let out = murakami(&["repair", "--dry-run"], &dir);
    assert_eq!(code(&out), 0);
    assert!(
        stdout(&out).contains("would cut the log at offset 304"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        state(&dir),
        before,
        "verify, stat and a dry run change nothing"
    );

    let out = murakami(&["repair"], &dir);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("cut at offset 304 (torn tail)"), "{text}");
    assert!(text.contains("repaired: records [0, 304)"), "{text}");
    let out = murakami(&["verify"], &dir);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let (_, reader) = Log::open(&dir, options()).unwrap();
    assert_eq!(reader.next_offset(), 304);
    assert_eq!(reader.read(303).unwrap(), payload(303));
}

#[test]
fn corruption_is_exit_2_and_only_truncate_corruption_cuts_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    make_log(&dir, 1000, true, 0);
    // A bit flip in a sealed segment's record (a closed log: no crash
    // explains it).
    damage_a_sealed_record(&dir);
    let before = state(&dir);

    let out = murakami(&["verify"], &dir);
    assert_eq!(code(&out), 2, "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("corruption: "), "{text}");
    assert!(
        text.contains("00000000000000000000") || text.contains(".seg"),
        "{text}"
    );
    assert!(text.contains("--truncate-corruption"), "{text}");

    one_line_error(&murakami(&["repair"], &dir), 2, "--truncate-corruption");
    let out = murakami(&["repair", "--dry-run"], &dir);
    assert_eq!(code(&out), 2);
    assert!(stdout(&out).contains("would refuse"));
    let out = murakami(&["repair", "--dry-run", "--truncate-corruption"], &dir);
    assert_eq!(code(&out), 0);
    assert!(
        stdout(&out).contains("would cut the log"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("would remove"), "{}", stdout(&out));
    assert_eq!(state(&dir), before, "refusals and dry runs change nothing");

    let verdict = json(&murakami(&["verify", "--json"], &dir));
    let cut_at = verdict["problem"]["offset"].as_u64().unwrap();
    let out = murakami(&["repair", "--truncate-corruption"], &dir);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("cut at offset {cut_at} (corruption")),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("removed "), "{}", stdout(&out));
    let out = murakami(&["verify"], &dir);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let stat = json(&murakami(&["stat", "--json"], &dir));
    assert_eq!(stat["next_offset"], cut_at);
}

#[test]
fn zeroed_sectors_truncated_and_missing_files_are_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    let template = tmp.path().join("template");
    make_log(&template, 1000, true, 0);
    type Damage = Box<dyn Fn(&Path)>;
    let damages: Vec<(&str, Damage)> = vec![
        (
            "a zeroed sector in a sealed segment",
            Box::new(|dir: &Path| {
                let seg = segments(dir)[1].clone();
                let mut bytes = fs::read(&seg).unwrap();
                bytes[4096..4608].fill(0);
                fs::write(&seg, bytes).unwrap();
            }),
        ),
        (
            "a sealed segment cut short",
            Box::new(|dir: &Path| {
                let seg = segments(dir)[1].clone();
                let bytes = fs::read(&seg).unwrap();
                fs::write(&seg, &bytes[..5000]).unwrap();
            }),
        ),
        (
            "a missing segment in the middle",
            Box::new(|dir: &Path| fs::remove_file(&segments(dir)[1]).unwrap()),
        ),
        (
            "a bad segment header",
            Box::new(|dir: &Path| flip(&segments(dir)[2], 20)),
        ),
    ];
    for (what, damage) in damages {
        let dir = tmp.path().join(what.replace(' ', "-"));
        copy_dir(&template, &dir);
        damage(&dir);
        let before = state(&dir);
        let out = murakami(&["verify"], &dir);
        assert_eq!(code(&out), 2, "{what}: {}{}", stdout(&out), stderr(&out));
        assert!(
            stdout(&out).starts_with("corruption: "),
            "{what}: {}",
            stdout(&out)
        );
        let stat = murakami(&["stat"], &dir);
        assert_eq!(code(&stat), 0, "{what}: stat describes a damaged log");
        assert!(
            stdout(&stat).contains("problem     corruption"),
            "{what}: {}",
            stdout(&stat)
        );
        assert_eq!(state(&dir), before, "{what}: verify changed a file");
        let out = murakami(&["repair", "--truncate-corruption"], &dir);
        assert_eq!(code(&out), 0, "{what}: {}", stderr(&out));
        let out = murakami(&["verify"], &dir);
        assert_eq!(code(&out), 0, "{what}: after repair: {}", stdout(&out));
    }
}

/// The writer of `live_log_*`: appends until killed, syncing now and then,
/// in small segments, purging the oldest records as it goes. Runs when the
/// test binary is re-executed with `MURAKAMI_CLI_WRITER=dir`.
#[test]
fn writer_child() {
    let Ok(dir) = std::env::var("MURAKAMI_CLI_WRITER") else {
        return;
    };
    let (mut writer, _) = Log::open(&dir, options()).unwrap();
    println!("open");
    let mut i = 0u64;
    loop {
        writer.append(&payload(i)).unwrap();
        if i % 50 == 49 {
            writer.sync().unwrap();
        }
        if i % 2000 == 1999 {
            writer.purge_before(i - 1000).unwrap();
        }
        i += 1;
        if i % 10 == 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

fn spawn_writer(dir: &Path) -> Child {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "writer_child", "--nocapture", "--test-threads=1"])
        .env("MURAKAMI_CLI_WRITER", dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    while !line.contains("open") {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "the writer died");
    }
    // Keep reading its output so it never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    child
}

#[test]
fn a_live_log_is_verified_beside_its_writer_and_repair_refuses_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let mut child = spawn_writer(&dir);
    let pid = child.id();
    // Let it write a few segments' worth.
    let deadline = Instant::now() + Duration::from_secs(30);
    while segments(&dir).len() < 4 {
        assert!(Instant::now() < deadline, "the writer makes no progress");
        std::thread::sleep(Duration::from_millis(10));
    }
    for round in 0..3 {
        let out = murakami(&["verify"], &dir);
        assert_eq!(
            code(&out),
            0,
            "round {round}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        let text = stdout(&out);
        assert!(text.starts_with("sound: "), "{text}");
        assert!(
            text.contains(&format!("a writer (pid {pid}) has it open")),
            "{text}"
        );
        let verdict = json(&murakami(&["verify", "--json"], &dir));
        assert_eq!(verdict["live"], true);
        assert!(verdict["records"].as_u64().unwrap() > 0);
        let stat = json(&murakami(&["stat", "--json"], &dir));
        assert_eq!(stat["state"], "live");
        assert_eq!(stat["writer"]["pid"], pid);
        let (first, next) = (
            stat["first_offset"].as_u64().unwrap(),
            stat["next_offset"].as_u64().unwrap(),
        );
        assert!(first <= next);
        one_line_error(&murakami(&["repair"], &dir), 5, &format!("pid {pid}"));
    }
    // Killed: what it wrote is in the page cache; no torn tail, unclean.
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid as i32).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    child.wait().unwrap();
    let before = state(&dir);
    let out = murakami(&["verify"], &dir);
    assert!(
        matches!(code(&out), 0 | 1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let stat = json(&murakami(&["stat", "--json"], &dir));
    assert_eq!(stat["state"], "unclean");
    assert!(stat["writer"].is_null());
    assert_eq!(
        state(&dir),
        before,
        "verify and stat of the killed writer's log change nothing"
    );
    let out = murakami(&["repair"], &dir);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = murakami(&["verify"], &dir);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert_eq!(
        json(&murakami(&["stat", "--json"], &dir))["state"],
        "closed"
    );
}

/// Runs `murakami ARGS DIR` with stdout (`which` 1) or stderr (2) a pipe
/// nobody reads (its read end closed first): every write there fails.
fn with_closed(which: u8, args: &[&str], dir: &Path) -> Output {
    let (read, write) = rustix::pipe::pipe().unwrap();
    drop(read);
    let mut command = Command::new(env!("CARGO_BIN_EXE_murakami"));
    command.args(args).arg(dir);
    if which == 1 {
        command.stdout(Stdio::from(write));
    } else {
        command.stderr(Stdio::from(write));
    }
    command.output().unwrap()
}

#[test]
fn a_reader_gone_away_does_not_change_the_verdict_and_a_closed_stderr_no_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    make_log(&dir, 300, false, 5);
    tear_last_record(&dir);
    // `verify | true`: still exit 1 (torn tail), as is `repair --dry-run`
    // of corruption still 2 below.
    assert_eq!(code(&with_closed(1, &["verify"], &dir)), 1);
    assert_eq!(code(&with_closed(1, &["verify", "--json"], &dir)), 1);
    assert_eq!(code(&with_closed(1, &["stat"], &dir)), 0);
    // Failures with nowhere to say so keep their exit code, no panic (101).
    let missing = tmp.path().join("missing");
    assert_eq!(code(&with_closed(2, &["stat"], &missing)), 4);
    assert_eq!(code(&with_closed(2, &["dump"], &missing)), 4);
    let corrupt = tmp.path().join("corrupt");
    make_log(&corrupt, 1000, true, 0);
    damage_a_sealed_record(&corrupt);
    assert_eq!(code(&with_closed(1, &["repair", "--dry-run"], &corrupt)), 2);
    assert_eq!(code(&with_closed(2, &["repair"], &corrupt)), 2);
}

#[test]
fn append_opens_a_log_whose_last_segment_a_crash_left_headless() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    make_log(&dir, 300, false, 0);
    let n = segments(&dir).len();
    // The next segment's file was made, its header never written.
    let next_base = json(&murakami(&["stat", "--json"], &dir))["next_offset"]
        .as_u64()
        .unwrap();
    fs::write(dir.join(format!("{next_base:020}.seg")), vec![0u8; 100]).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_murakami"))
        .args(["append"])
        .arg(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(b"after\n")?;
            child.wait_with_output()
        })
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{next_base}\n"));
    let stat = json(&murakami(&["stat", "--json"], &dir));
    assert_eq!(stat["next_offset"], next_base + 1);
    let segs = stat["segments"].as_array().unwrap();
    assert_eq!(
        segs.len(),
        n,
        "the headless file was replaced, not added to"
    );
    assert!(
        segs.iter().all(|s| s["capacity"] == SEG),
        "the log kept its size"
    );
}
