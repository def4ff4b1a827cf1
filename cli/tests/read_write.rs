//! `murakami dump`, `append` and `tail`, run as the real binary against
//! real log directories.
//!
//! The `tail -f` tests follow a writer of another process: this test binary
//! run again with `MURAKAMI_CLI_TEST_WRITER` set (`writer_child`), driven
//! through its stdin.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use murakami::{Log, Options, Reader};

/// A failure bound for things that take milliseconds.
const DEADLINE: Duration = Duration::from_secs(20);

fn murakami(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_murakami"));
    command.args(args);
    command
}

/// Runs `murakami args` with `stdin` as its input.
fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = murakami(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    let feeder = std::thread::spawn(move || {
        // The command may stop reading early (that is what some tests test).
        let _ = input.write_all(&stdin);
    });
    let output = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    output
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// Checks the exit code, and that a failure says so in one line.
fn check(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if code != 0 {
        let stderr = text(&output.stderr);
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// The path as an argument.
fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Every record of the log in `dir`: (offset, timestamp, payload).
fn records(dir: &Path) -> Vec<(u64, u64, Vec<u8>)> {
    let reader = Reader::open(dir).unwrap();
    reader
        .cursor(reader.first_offset())
        .unwrap()
        .map(|r| r.map(|r| (r.offset, r.timestamp, r.payload)).unwrap())
        .collect()
}

fn payloads(dir: &Path) -> Vec<Vec<u8>> {
    records(dir).into_iter().map(|(_, _, p)| p).collect()
}

/// A log of records with the given timestamps and payloads, closed.
fn make_log(dir: &Path, records: &[(u64, &[u8])]) {
    let (mut writer, _) = Log::open(dir, Options::default().segment_size(1 << 20)).unwrap();
    for &(timestamp, payload) in records {
        writer.append_with_timestamp(payload, timestamp).unwrap();
    }
    writer.close().unwrap();
}

/// A log of `n` records `r0`, `r1`, ... stamped `T0`, `T0 + 1000`, ...
fn numbered_log(dir: &Path, n: u64) {
    let recs: Vec<(u64, Vec<u8>)> = (0..n)
        .map(|i| (T0 + i * 1_000, format!("r{i}").into_bytes()))
        .collect();
    let refs: Vec<(u64, &[u8])> = recs.iter().map(|(t, p)| (*t, p.as_slice())).collect();
    make_log(dir, &refs);
}

/// The lines `murakami command DIR args` prints, checking it succeeds.
fn lines(command: &str, dir: &Path, args: &[&str]) -> Vec<String> {
    let mut all = vec![command, arg(dir)];
    all.extend_from_slice(args);
    let output = run(&all, b"");
    check(&output, 0);
    text(&output.stdout).lines().map(str::to_string).collect()
}

fn human(nanos: u64) -> String {
    humantime::format_rfc3339_micros(UNIX_EPOCH + Duration::from_nanos(nanos)).to_string()
}

const T0: u64 = 1_764_770_400_000_000_000;

#[test]
fn append_lines_then_dump_each_format() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("new/log");
    let output = run(&["append", arg(&dir)], b"one\ntwo\n\ntab\there\r\nlast");
    check(&output, 0);
    assert_eq!(text(&output.stdout), "0\n1\n2\n3\n4\n");
    assert_eq!(
        text(&output.stderr),
        "appended 5 records, offsets 0..5, durable up to 5\n"
    );
    let recs = records(&dir);
    let payloads: Vec<&[u8]> = recs.iter().map(|r| r.2.as_slice()).collect();
    assert_eq!(
        payloads,
        [&b"one"[..], b"two", b"", b"tab\there\r", b"last"],
        "lines without their newline, an empty line as an empty record, the last one too"
    );

    let output = run(&["dump", arg(&dir)], b"");
    check(&output, 0);
    let expected: String = recs
        .iter()
        .map(|(offset, ts, _)| (offset, human(*ts)))
        .zip(["one", "two", "", "tab\\there\\r", "last"])
        .map(|((offset, time), shown)| format!("{offset}  {time}  {shown}\n"))
        .collect();
    assert_eq!(text(&output.stdout), expected);

    let output = run(&["dump", arg(&dir), "--format", "json"], b"");
    check(&output, 0);
    let lines: Vec<serde_json::Value> = text(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    for (line, (offset, ts, payload)) in lines.iter().zip(&recs) {
        assert_eq!(
            *line,
            serde_json::json!({
                "offset": offset,
                "timestamp": ts,
                "time": human(*ts),
                "len": payload.len(),
                "payload": std::str::from_utf8(payload).unwrap(),
            })
        );
    }

    let output = run(&["dump", arg(&dir), "--format", "hex", "--from", "3"], b"");
    check(&output, 0);
    assert_eq!(
        text(&output.stdout),
        format!(
            "3  {}  len 9\n  00000000  74 61 62 09 68 65 72 65  0d                       |tab.here.|\n\
             4  {}  len 4\n  00000000  6c 61 73 74                                       |last|\n",
            human(recs[3].1),
            human(recs[4].1)
        )
    );

    let output = run(&["dump", arg(&dir), "--format", "raw", "--count", "3"], b"");
    check(&output, 0);
    assert_eq!(
        output.stdout,
        b"\x03\0\0\0one\x03\0\0\0two\0\0\0\0".to_vec()
    );
}

#[test]
fn binary_payloads_in_text_and_json() {
    let tmp = tempfile::tempdir().unwrap();
    make_log(
        tmp.path(),
        &[(T0, b"a\0b\nc\\\xff"), (T0 + 1, "é\u{7}".as_bytes())],
    );
    let output = run(&["dump", arg(tmp.path())], b"");
    check(&output, 0);
    assert_eq!(
        text(&output.stdout),
        format!(
            "0  {}  a\\x00b\\nc\\\\\\xff\n1  {}  é\\x07\n",
            human(T0),
            human(T0 + 1)
        )
    );
    let output = run(&["dump", arg(tmp.path()), "--format", "json"], b"");
    check(&output, 0);
    let first: serde_json::Value =
        serde_json::from_str(text(&output.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(first["payload_base64"], "YQBiCmNc/w==");
    assert!(first.get("payload").is_none());
}

#[test]
fn raw_dump_appends_into_another_log_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let originals: Vec<Vec<u8>> = vec![
        b"plain".to_vec(),
        Vec::new(),
        b"\0\0\0\0".to_vec(),
        b"line\nbreaks\n\n".to_vec(),
        vec![0xff; 3],
        big,
        b"\x05\0\0\0 looks like a length".to_vec(),
    ];
    let refs: Vec<(u64, &[u8])> = originals.iter().map(|p| (T0, p.as_slice())).collect();
    make_log(&a, &refs);
    let dumped = run(&["dump", arg(&a), "--format", "raw"], b"");
    check(&dumped, 0);
    let appended = run(&["append", arg(&b), "--raw"], &dumped.stdout);
    check(&appended, 0);
    assert_eq!(text(&appended.stdout), "0\n1\n2\n3\n4\n5\n6\n");
    assert_eq!(payloads(&b), originals);
}

#[test]
fn a_raw_stream_cut_short_keeps_the_whole_records() {
    let tmp = tempfile::tempdir().unwrap();
    for (i, cut) in [
        b"\x02\0\0\0ok\x05\0\0\0ab".as_slice(),
        b"\x02\0\0\0ok\x05\0",
    ]
    .into_iter()
    .enumerate()
    {
        let dir = tmp.path().join(i.to_string());
        let output = run(&["append", arg(&dir), "--raw"], cut);
        assert_eq!(output.status.code(), Some(7));
        let stderr = text(&output.stderr);
        assert!(stderr.contains("appended 1 records, offsets 0..1, durable up to 1"));
        assert!(
            stderr
                .lines()
                .last()
                .unwrap()
                .contains("middle of a record")
        );
        assert_eq!(text(&output.stdout), "0\n");
        assert_eq!(payloads(&dir), [b"ok"]);
    }
}

#[test]
fn dump_from_count_and_to_time() {
    let tmp = tempfile::tempdir().unwrap();
    numbered_log(tmp.path(), 10);
    let offsets = |args: &[&str]| -> Vec<u64> {
        lines("dump", tmp.path(), args)
            .iter()
            .map(|line| line.split("  ").next().unwrap().parse().unwrap())
            .collect()
    };
    assert_eq!(offsets(&[]), (0..10).collect::<Vec<_>>());
    assert_eq!(offsets(&["--from", "3", "--count", "2"]), [3, 4]);
    assert_eq!(offsets(&["--count", "0"]), Vec::<u64>::new());
    assert_eq!(offsets(&["--from", "10"]), Vec::<u64>::new());
    assert_eq!(offsets(&["--from", "8", "--count", "5"]), [8, 9]);
    let t = (T0 + 3_000).to_string();
    assert_eq!(offsets(&["--to-time", &t]), [0, 1, 2, 3]);
    assert_eq!(offsets(&["--from", "2", "--to-time", &t]), [2, 3]);
    let at = human(T0 + 4_500);
    assert_eq!(offsets(&["--to-time", &at, "--count", "3"]), [0, 1, 2]);
    assert_eq!(
        offsets(&["--to-time", &(T0 - 1).to_string()]),
        Vec::<u64>::new()
    );
}

#[test]
fn offsets_outside_the_log_and_missing_dirs_fail_in_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let options = Options::default().segment_size(4096);
        let (mut writer, _) = Log::open(tmp.path(), options).unwrap();
        for i in 0..300 {
            writer.append(format!("record {i}").as_bytes()).unwrap();
        }
        let removed = writer.purge_before(200).unwrap();
        assert!(removed.first_offset > 0);
        writer.close().unwrap();
    }
    let first = Reader::open(tmp.path()).unwrap().first_offset();
    let output = run(&["dump", arg(tmp.path()), "--from", "0"], b"");
    check(&output, 7);
    assert!(text(&output.stderr).contains(&format!("the log starts at {first}")));
    let output = run(&["dump", arg(tmp.path()), "--from", "301"], b"");
    check(&output, 7);
    assert!(text(&output.stderr).contains("offset 301 is outside"));
    let output = run(&["tail", arg(tmp.path()), "--from", "0"], b"");
    check(&output, 7);
    let output = run(&["dump", arg(tmp.path())], b"");
    check(&output, 0);
    assert_eq!(text(&output.stdout).lines().count() as u64, 300 - first);

    let missing = tmp.path().join("missing");
    for args in [vec!["dump"], vec!["tail"], vec!["tail", "-f"]] {
        let mut args = args;
        args.push(arg(&missing));
        let output = run(&args, b"");
        check(&output, 4);
        assert!(text(&output.stderr).contains("no such directory"));
    }
}

#[test]
fn append_to_a_log_a_writer_holds_fails_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut writer, _) = Log::open(tmp.path(), Options::default()).unwrap();
    writer.append(b"held").unwrap();
    writer.sync().unwrap();
    let output = run(&["append", arg(tmp.path())], b"more\n");
    check(&output, 5);
    assert!(text(&output.stderr).contains("held by a writer"));
    assert!(output.stdout.is_empty());
    // dump reads it meanwhile, without the lock.
    let output = run(&["dump", arg(tmp.path())], b"");
    check(&output, 0);
    assert!(text(&output.stdout).ends_with("  held\n"));
    assert_eq!(writer.next_offset(), 1);
    writer.close().unwrap();
    assert_eq!(payloads(tmp.path()), [b"held"]);
}

#[test]
fn a_record_too_large_fails_after_keeping_what_came_before() {
    let tmp = tempfile::tempdir().unwrap();
    let big = "x".repeat(200);
    for (i, raw) in [false, true].into_iter().enumerate() {
        let dir = tmp.path().join(i.to_string());
        let mut input = Vec::new();
        for line in ["a", "b", big.as_str(), "c"] {
            if raw {
                input.extend_from_slice(&(line.len() as u32).to_le_bytes());
                input.extend_from_slice(line.as_bytes());
            } else {
                input.extend_from_slice(line.as_bytes());
                input.push(b'\n');
            }
        }
        let mut args = vec!["append", arg(&dir), "--max-record-size", "100"];
        if raw {
            args.push("--raw");
        }
        let output = run(&args, &input);
        assert_eq!(output.status.code(), Some(7), "{output:?}");
        let stderr = text(&output.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(
            lines[0],
            "appended 2 records, offsets 0..2, durable up to 2"
        );
        assert!(lines[1].contains("record of 200 bytes is larger than the maximum of 100"));
        assert_eq!(text(&output.stdout), "0\n1\n");
        let reader = Reader::open(&dir).unwrap();
        assert_eq!(reader.durable_offset(), 2);
        assert_eq!(payloads(&dir), [b"a", b"b"]);
    }
    // A line too long for the limit fails before its end arrives.
    let dir = tmp.path().join("long");
    let output = run(
        &["append", arg(&dir), "--max-record-size", "4096"],
        &[b'y'; 1 << 20],
    );
    assert_eq!(output.status.code(), Some(7));
    assert!(payloads(&dir).is_empty());
}

#[test]
fn sync_policies_are_accepted_and_bad_ones_are_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    for (i, policy) in [
        "explicit",
        "every",
        "every=3",
        "interval=10ms",
        "interval=1s",
    ]
    .into_iter()
    .enumerate()
    {
        let dir = tmp.path().join(i.to_string());
        let output = run(&["append", arg(&dir), "--sync", policy], b"1\n2\n3\n4\n5\n");
        check(&output, 0);
        assert_eq!(Reader::open(&dir).unwrap().durable_offset(), 5, "{policy}");
    }
    for policy in [
        "",
        "always",
        "every=0",
        "every=x",
        "interval=0s",
        "interval=soon",
        "every=-1",
    ] {
        let dir = tmp.path().join("bad");
        let output = run(&["append", arg(&dir), "--sync", policy], b"1\n");
        assert_eq!(output.status.code(), Some(64), "{policy}");
        assert!(!dir.exists(), "{policy}: nothing created");
    }
    let output = run(&["dump", arg(tmp.path()), "--format", "xml"], b"");
    assert_eq!(output.status.code(), Some(64));
    let output = run(&["dump", arg(tmp.path()), "--to-time", "someday"], b"");
    assert_eq!(output.status.code(), Some(64));
}

#[test]
fn append_keeps_the_segment_size_of_an_existing_log() {
    let tmp = tempfile::tempdir().unwrap();
    let output = run(
        &["append", arg(tmp.path()), "--segment-size", "8192"],
        b"a\n",
    );
    check(&output, 0);
    let line = "z".repeat(100);
    let input = format!("{line}\n").repeat(300);
    let output = run(&["append", arg(tmp.path())], input.as_bytes());
    check(&output, 0);
    for entry in std::fs::read_dir(tmp.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "seg") {
            assert_eq!(std::fs::metadata(&path).unwrap().len(), 8192, "{path:?}");
        }
    }
    assert_eq!(payloads(tmp.path()).len(), 301);
}

#[test]
fn tail_prints_the_last_records() {
    let tmp = tempfile::tempdir().unwrap();
    numbered_log(tmp.path(), 25);
    let payloads_of = |args: &[&str]| -> Vec<String> {
        lines("tail", tmp.path(), args)
            .iter()
            .map(|line| line.rsplit("  ").next().unwrap().to_string())
            .collect()
    };
    let names = |range: std::ops::Range<u64>| range.map(|i| format!("r{i}")).collect::<Vec<_>>();
    assert_eq!(payloads_of(&[]), names(15..25));
    assert_eq!(payloads_of(&["-n", "3"]), names(22..25));
    assert_eq!(payloads_of(&["-n", "0"]), names(0..0));
    assert_eq!(payloads_of(&["-n", "100"]), names(0..25));
    assert_eq!(payloads_of(&["--from", "20"]), names(20..25));
    let t = (T0 + 22_500).to_string();
    assert_eq!(payloads_of(&["--from-time", &t]), names(23..25));
    let output = run(&["tail", arg(tmp.path()), "--from", "1", "-n", "2"], b"");
    assert_eq!(output.status.code(), Some(64));
    // A directory without a log: nothing to print.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let output = run(&["tail", arg(&empty)], b"");
    check(&output, 0);
    assert!(output.stdout.is_empty());
}

#[test]
fn dump_prints_what_it_read_before_damage() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut writer, _) = Log::open(tmp.path(), Options::default().segment_size(4096)).unwrap();
    for i in 0..5 {
        writer.append(format!("r{i}").as_bytes()).unwrap();
    }
    writer.sync().unwrap();
    // A crash: no clean close. Then bytes that are not a frame after the
    // last record.
    std::mem::forget(writer);
    let seg = tmp.path().join("00000000000000000000.seg");
    let mut bytes = std::fs::read(&seg).unwrap();
    let end = bytes.iter().rposition(|&b| b != 0).unwrap() + 1;
    let at = end.next_multiple_of(8);
    bytes[at..at + 16].fill(0xa5);
    std::fs::write(&seg, &bytes).unwrap();
    let output = run(&["dump", arg(tmp.path())], b"");
    let stdout = text(&output.stdout);
    match output.status.code() {
        // The reader refused the log: no records.
        Some(2) if stdout.is_empty() => {}
        // It read up to the damage.
        Some(2) => assert_eq!(stdout.lines().count(), 5, "{stdout}"),
        // The damage reads as a torn tail the reader does not report.
        _ => panic!("{output:?}"),
    }
    check(&output, 2);
    assert!(text(&output.stderr).contains("corrupt"));
}

// ---- tail -f against a writer in another process ----

/// The writer of another process: this test binary, run again. Reads
/// commands on stdin, answers `answer N` (its next offset, or first offset
/// after a purge) on stdout.
#[test]
fn writer_child() {
    let Some(dir) = std::env::var_os("MURAKAMI_CLI_TEST_WRITER") else {
        return;
    };
    let options = Options::default().segment_size(4096);
    let (mut writer, _) = Log::open(&dir, options).unwrap();
    let mut seq = 0u64;
    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap();
        let mut words = line.split(' ');
        let command = words.next().unwrap();
        let n: u64 = words.next().map_or(0, |w| w.parse().unwrap());
        let answer = match command {
            "append" => {
                for _ in 0..n {
                    writer.append(format!("r{seq}").as_bytes()).unwrap();
                    seq += 1;
                }
                writer.next_offset()
            }
            "purge" => writer.purge_before(n).unwrap().first_offset,
            "truncate" => {
                writer.truncate_from(n).unwrap();
                writer.next_offset()
            }
            "quit" => break,
            _ => panic!("{line}"),
        };
        // On a line of its own: libtest may have begun one.
        println!("\nanswer {answer}");
    }
    writer.close().unwrap();
}

/// A writer in another process.
struct WriterChild {
    child: Child,
    stdin: ChildStdin,
    answers: BufReader<std::process::ChildStdout>,
    /// The records appended, in order: (offset, payload).
    appended: Vec<(u64, String)>,
    next: u64,
    seq: u64,
}

impl WriterChild {
    fn start(dir: &Path) -> WriterChild {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["writer_child", "--exact", "--nocapture", "--test-threads=1"])
            .env("MURAKAMI_CLI_TEST_WRITER", dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let answers = BufReader::new(child.stdout.take().unwrap());
        WriterChild {
            child,
            stdin,
            answers,
            appended: Vec::new(),
            next: 0,
            seq: 0,
        }
    }

    fn ask(&mut self, command: &str) -> u64 {
        writeln!(self.stdin, "{command}").unwrap();
        loop {
            let mut line = String::new();
            assert!(
                self.answers.read_line(&mut line).unwrap() > 0,
                "writer died"
            );
            if let Some(n) = line.trim_end().strip_prefix("answer ") {
                return n.parse().unwrap();
            }
        }
    }

    fn append(&mut self, n: u64) {
        for _ in 0..n {
            self.appended.push((self.next, format!("r{}", self.seq)));
            self.next += 1;
            self.seq += 1;
        }
        assert_eq!(self.ask(&format!("append {n}")), self.next);
    }

    fn truncate(&mut self, at: u64) {
        assert_eq!(self.ask(&format!("truncate {at}")), at);
        self.next = at;
    }

    fn quit(mut self) {
        writeln!(self.stdin, "quit").unwrap();
        assert!(self.child.wait().unwrap().success());
    }
}

/// Lines of a child's output as they come, each with when it was read.
fn lines_of(out: impl Read + Send + 'static) -> Receiver<(String, SystemTime)> {
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).split(b'\n') {
            let Ok(line) = line else { return };
            let line = String::from_utf8(line).unwrap();
            if send.send((line, SystemTime::now())).is_err() {
                return;
            }
        }
    });
    receive
}

/// `tail -f --format json` output checked against what the writer
/// appended.
struct Follow {
    lines: Receiver<(String, SystemTime)>,
    printed: usize,
}

impl Follow {
    /// Waits until every record appended so far has been printed, checking
    /// each: the right offset and payload, in order, read within a second
    /// of its timestamp.
    fn catch_up(&mut self, writer: &WriterChild) {
        let deadline = Instant::now() + DEADLINE;
        while self.printed < writer.appended.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            let (line, read_at) = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("tail printed {} records", self.printed));
            let record: serde_json::Value = serde_json::from_str(&line).unwrap();
            let (offset, payload) = &writer.appended[self.printed];
            assert_eq!(record["offset"], *offset, "{line}");
            assert_eq!(record["payload"], *payload, "{line}");
            let stamped = UNIX_EPOCH + Duration::from_nanos(record["timestamp"].as_u64().unwrap());
            let late = read_at.duration_since(stamped).unwrap_or_default();
            assert!(late < Duration::from_secs(1), "{line}: read {late:?} late");
            self.printed += 1;
        }
    }
}

/// Waits for `child` to exit, for at most `DEADLINE`.
fn exit_of(child: &mut Child) -> std::process::ExitStatus {
    poll("did not exit", || child.try_wait().unwrap())
}

/// Asks `ready` every few milliseconds until it gives something, for at
/// most `DEADLINE` (then fails, saying `what`).
fn poll<T>(what: &str, mut ready: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(done) = ready() {
            return done;
        }
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn tail_follows_a_writer_of_another_process_through_rolls_purges_and_truncations() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    std::fs::create_dir(&dir).unwrap();
    // Started before there is a log: it waits for one.
    let mut tail = murakami(&["tail", "-f", arg(&dir), "--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut follow = Follow {
        lines: lines_of(tail.stdout.take().unwrap()),
        printed: 0,
    };
    let notes = lines_of(tail.stderr.take().unwrap());
    let mut writer = WriterChild::start(&dir);

    // Rolls: segments of 4 KiB hold a hundred records or so.
    writer.append(1);
    follow.catch_up(&writer);
    for _ in 0..7 {
        writer.append(100);
    }
    follow.catch_up(&writer);
    // A purge of what was printed.
    let first = writer.ask("purge 300");
    assert!(first > 0 && first <= 300);
    writer.append(200);
    follow.catch_up(&writer);

    // A truncation the tail waits through: it notices, says so, and goes
    // on from the cut.
    let cut = writer.next - 30;
    writer.truncate(cut);
    let (note, _) = notes.recv_timeout(DEADLINE).unwrap();
    assert_eq!(
        note,
        format!("murakami: log truncated at {cut}; following from there")
    );
    writer.append(400);
    follow.catch_up(&writer);

    // A truncation over several segments, refilled at once past where the
    // tail stood: it still goes back to the cut.
    let cut = writer.next - 250;
    writer.truncate(cut);
    writer.append(600);
    follow.catch_up(&writer);
    let (note, _) = notes.recv_timeout(DEADLINE).unwrap();
    assert_eq!(
        note,
        format!("murakami: log truncated at {cut}; following from there")
    );
    for _ in 0..4 {
        writer.append(50);
    }
    follow.catch_up(&writer);
    assert!(writer.appended.len() >= 2_000);
    writer.quit();

    // Ctrl-C: a clean exit, every line whole.
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&tail),
        rustix::process::Signal::INT,
    )
    .unwrap();
    let status = exit_of(&mut tail);
    assert_eq!(status.code(), Some(0), "{status:?}");
    // Nothing more was printed: the reader thread ends with the pipe.
    let rest: Vec<_> = follow.lines.iter().collect();
    assert!(rest.is_empty(), "{rest:?}");
    assert!(notes.try_recv().is_err());
}

/// Waits until a reader process sleeps on the log in `dir` (the control
/// file's sleeper count, bytes 192..196): it is following, at the end.
fn wait_for_a_sleeper(dir: &Path) {
    poll("tail -f never waits", || {
        let control = std::fs::read(dir.join("murakami.tail")).unwrap_or_default();
        (control.len() >= 196 && control[192..196] != [0; 4]).then_some(())
    });
}

#[test]
fn tail_f_that_printed_nothing_yet_still_sees_a_truncation_below_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let mut writer = WriterChild::start(&dir);
    writer.append(20);
    // -n 0: nothing printed; it waits at offset 20.
    let mut tail = murakami(&["tail", "-f", "-n", "0", arg(&dir), "--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut follow = Follow {
        lines: lines_of(tail.stdout.take().unwrap()),
        printed: 20,
    };
    let notes = lines_of(tail.stderr.take().unwrap());
    wait_for_a_sleeper(&dir);
    // Cut below it and refilled past it at once: every new record is
    // printed, from the cut.
    writer.truncate(5);
    writer.append(30);
    follow.catch_up(&writer);
    let (note, _) = notes.recv_timeout(DEADLINE).unwrap();
    assert_eq!(note, "murakami: log truncated at 5; following from there");
    writer.quit();
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&tail),
        rustix::process::Signal::INT,
    )
    .unwrap();
    assert_eq!(exit_of(&mut tail).code(), Some(0));
}

#[test]
fn tail_f_into_a_closed_pipe_ends_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut writer, _) = Log::open(tmp.path(), Options::default().segment_size(4096)).unwrap();
    for i in 0..5 {
        writer.append(format!("r{i}").as_bytes()).unwrap();
    }
    let mut tail = murakami(&["tail", "-f", arg(tmp.path()), "-n", "5"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        // `| head -n 3`
        let mut out = BufReader::new(tail.stdout.take().unwrap());
        for i in 0..3 {
            let mut line = String::new();
            out.read_line(&mut line).unwrap();
            assert!(line.ends_with(&format!("  r{i}\n")), "{line}");
        }
    }
    // It learns of the closed pipe when it next prints: keep appending.
    let status = poll("tail -f did not notice the closed pipe", || {
        let status = tail.try_wait().unwrap();
        if status.is_none() {
            writer.append(b"more").unwrap();
        }
        status
    });
    assert_eq!(status.code(), Some(0));
    let mut stderr = String::new();
    tail.stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(stderr, "");
    writer.close().unwrap();
}

#[test]
fn append_stops_cleanly_at_ctrl_c_with_everything_durable() {
    let tmp = tempfile::tempdir().unwrap();
    let mut append = murakami(&["append", arg(tmp.path())])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = append.stdin.take().unwrap();
    stdin.write_all(b"a\nb\npart").unwrap();
    let mut out = BufReader::new(append.stdout.take().unwrap());
    for expected in ["0\n", "1\n"] {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line, expected);
    }
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&append),
        rustix::process::Signal::INT,
    )
    .unwrap();
    // stdin stays open: Ctrl-C alone ends it.
    let status = exit_of(&mut append);
    assert_eq!(status.code(), Some(0));
    let mut stderr = String::new();
    append
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(
        stderr,
        "appended 2 records, offsets 0..2, durable up to 2\n"
    );
    drop(stdin);
    assert_eq!(payloads(tmp.path()), [b"a", b"b"]);
}
