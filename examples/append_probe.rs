//! A fixed workload to count instructions with callgrind: 200,000 appends
//! of 60-byte records, then a cursor reading them all back. Each phase is
//! a function of its own, so that callgrind can collect only inside it.
//!
//! ```text
//! cargo build --release --example append_probe
//! valgrind --tool=callgrind --collect-atstart=no \
//!     --toggle-collect='*append_phase*' --toggle-collect='*read_phase*' \
//!     --callgrind-out-file=probe.out target/release/examples/append_probe
//! callgrind_annotate --inclusive=yes probe.out | grep _phase
//! ```
//!
//! Instructions per append: the inclusive count of `append_phase` divided
//! by 200,000 (the same for reads). The preparer is off, so that no
//! background thread faults pages in while the phases run; the counts are
//! of the producer's and the reader's own instructions (callgrind does not
//! count the kernel's).

use std::hint::black_box;

use murakami::{Log, Options, Reader, Writer};

/// Records appended, then read.
const RECORDS: u64 = 200_000;
/// Payload length.
const LEN: usize = 60;

#[inline(never)]
fn append_phase(writer: &mut Writer, body: &[u8]) {
    for _ in 0..RECORDS {
        black_box(writer.append(black_box(body)).expect("append"));
    }
}

#[inline(never)]
fn read_phase(reader: &Reader) -> usize {
    let mut cursor = reader.cursor(0).expect("cursor at the start");
    let mut bytes = 0;
    while let Some(record) = cursor.next_ref().expect("read") {
        bytes += black_box(record.payload).len();
    }
    bytes
}

fn main() {
    let dir = tempfile::Builder::new()
        .prefix("murakami-probe-")
        .tempdir_in("/tmp")
        .expect("a temporary directory");
    let options = Options::default().prefault(false);
    let (mut writer, reader) = Log::open(dir.path(), options).expect("open a log");
    let body: Vec<u8> = (0..LEN).map(|i| (i * 31 + 7) as u8).collect();
    append_phase(&mut writer, &body);
    let bytes = read_phase(&reader);
    assert_eq!(bytes, RECORDS as usize * LEN);
    println!("{RECORDS} appends and reads of {LEN} B");
}
