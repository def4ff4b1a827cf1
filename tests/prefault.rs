//! The preparing thread faults in pages ahead of the producer: in the first
//! segment, after a roll in the next one, and after a truncation in the
//! segment that replaced the active one, far past what a prepared segment
//! comes with. Pages the thread faulted in are in the page cache,
//! which any mapping of the file sees (`mincore`).
//!
//! The thread works in the background, so each check waits for the pages
//! to become resident, for up to a minute: the chase takes milliseconds,
//! so only a thread that never chases (no nudge reached it, or it looks at
//! the wrong segment) fails.
#![cfg(not(feature = "loom"))]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::segment_files;
use murakami::{Log, Options, Writer};

const MIB: usize = 1 << 20;
/// What a prepared segment comes with faulted in (the preparer's
/// `PREPARED_AHEAD`); the chase must go past it.
const PREPARED: usize = 8 * MIB;
/// Segment size: room for the chase (32 MiB ahead) past `PREPARED`.
const SEGMENT: usize = 40 * MIB;

/// Whether the page at `at` of the file at `path` is in the page cache.
fn resident(path: &Path, at: usize) -> bool {
    let file = std::fs::File::open(path).expect("open the segment");
    // A raw map: the test never reads through it, only asks about it.
    let map = memmap2::MmapOptions::new()
        .map_raw_read_only(&file)
        .expect("map the segment");
    assert!(at < map.len());
    let page = at & !4095;
    let mut vec = [0u8; 1];
    // SAFETY: `[ptr + page, ptr + page + 4096)` lies inside `map`, which
    // lives until after the call; `vec` has room for the one page asked
    // about. mincore only reports residency; it changes nothing.
    let rc = unsafe { libc::mincore(map.as_mut_ptr().add(page).cast(), 4096, vec.as_mut_ptr()) };
    assert_eq!(rc, 0, "mincore: {}", std::io::Error::last_os_error());
    vec[0] & 1 == 1
}

/// Whether `check` comes true within a minute (checked every 5 ms).
fn eventually(mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// Waits (for up to a minute) until the page at `at` of `path` is resident.
fn becomes_resident(path: &Path, at: usize) -> bool {
    eventually(|| resident(path, at))
}

/// The record the tests append: 64 KiB.
fn record() -> Vec<u8> {
    vec![7u8; 64 << 10]
}

/// Appends `bytes` of [`record`]s.
fn append_bytes(writer: &mut Writer, bytes: usize) {
    let record = record();
    for _ in 0..bytes / record.len() {
        writer.append(&record).expect("append");
    }
}

#[test]
fn pages_are_faulted_in_ahead_of_the_producer_in_every_segment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = Options::default().segment_size(SEGMENT as u64);
    let (mut writer, _reader) = Log::open(dir.path(), options).expect("open");
    // A few MiB into the first segment: the chase reaches past what the
    // segment was prepared with.
    append_bytes(&mut writer, 3 * MIB);
    let first = segment_files(dir.path())[0].clone();
    let probe = PREPARED + 8 * MIB;
    assert!(
        becomes_resident(&first, probe),
        "first segment: the page {probe} bytes in was never faulted in"
    );
    // Roll into the second segment and write a little there.
    while segment_files(dir.path()).len() < 2 {
        append_bytes(&mut writer, 64 << 10);
    }
    append_bytes(&mut writer, MIB);
    let second = segment_files(dir.path())[1].clone();
    assert!(
        becomes_resident(&second, probe),
        "second segment: the page {probe} bytes in was never faulted in"
    );
    // A truncation at the second segment's first record replaces it with a
    // new file of the same name and base: the chase moves to the new one.
    let base = common::base_of(&second);
    writer.truncate_from(base).expect("truncate");
    append_bytes(&mut writer, MIB);
    assert_eq!(segment_files(dir.path())[1], second, "same name, new file");
    assert!(
        becomes_resident(&second, probe),
        "replaced segment: the page {probe} bytes in was never faulted in"
    );
    writer.close().expect("close");
}

/// Resident bytes of this process's mappings of the file at `path`
/// (`/proc/self/smaps`).
fn mapped_rss(path: &Path) -> usize {
    let smaps = std::fs::read_to_string("/proc/self/smaps").expect("read smaps");
    // smaps names the file by its resolved path.
    let path = std::fs::canonicalize(path).expect("resolve the path");
    let name = path.to_str().expect("utf-8 path");
    let mut ours = false;
    let mut kib = 0;
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if first.contains('-') && first.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            ours = line.ends_with(name);
        } else if ours {
            if let Some(rest) = line.strip_prefix("Rss:") {
                kib += rest
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<usize>()
                    .expect("kB");
            }
        }
    }
    kib << 10
}

#[test]
fn written_pages_leave_the_producers_page_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = Options::default().segment_size(128 << 20);
    let (mut writer, reader) = Log::open(dir.path(), options).expect("open");
    let written = 64 * MIB;
    append_bytes(&mut writer, written);
    let segment = segment_files(dir.path())[0].clone();
    // Without the release, the map would hold every written page and the
    // 32 MiB faulted in ahead: ~96 MiB. With it, the written pages but the
    // last few MiB leave it.
    let mut rss = mapped_rss(&segment);
    eventually(|| {
        rss = mapped_rss(&segment);
        rss < written
    });
    assert!(rss > 0, "the segment's mapping was found");
    assert!(
        rss < written,
        "{} MiB of the segment still mapped after writing {} MiB",
        rss >> 20,
        written >> 20
    );
    // Reading the released records maps them again, unchanged.
    let mut cursor = reader.cursor(0).expect("cursor");
    let mut buf = Vec::new();
    let record = record();
    while let Some((_, _)) = cursor.next_into(&mut buf).expect("read") {
        assert_eq!(buf, record);
    }
    assert_eq!(cursor.next_offset(), (written / record.len()) as u64);
    writer.close().expect("close");
}

#[test]
fn a_sync_drops_the_pages_it_writes_back_from_the_producers_page_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    // No prefaulting thread: whatever leaves the map, the sync released.
    let options = Options::default().segment_size(64 << 20).prefault(false);
    let (mut writer, _reader) = Log::open(dir.path(), options).expect("open");
    let written = 16 * MIB;
    append_bytes(&mut writer, written);
    let segment = segment_files(dir.path())[0].clone();
    let before = mapped_rss(&segment);
    assert!(
        before >= written,
        "{} MiB mapped after writing",
        before >> 20
    );
    writer.sync().expect("sync");
    let after = mapped_rss(&segment);
    assert!(
        after < MIB,
        "{} KiB of the segment still mapped after syncing it",
        after >> 10
    );
    writer.close().expect("close");
}

#[test]
fn without_prefault_nothing_is_faulted_in_ahead() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = Options::default()
        .segment_size(SEGMENT as u64)
        .prefault(false);
    let (mut writer, _reader) = Log::open(dir.path(), options).expect("open");
    writer.append(&[7u8; 100]).expect("append");
    // Closing joins the preparing thread: whatever it would have done is
    // done by then.
    let first = segment_files(dir.path())[0].clone();
    writer.close().expect("close");
    assert!(
        !resident(&first, PREPARED + 8 * MIB),
        "a page far ahead was faulted in with prefault off"
    );
}
