//! Opening an arbitrary directory of segment files and markers, strictly
//! and truncating: it may refuse, it must not panic, and whatever it opens
//! must read back consistently, accept an append and reopen strictly.
//! The input is split into files by `murakami::fuzzing::image`.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

/// One scratch directory per process, on tmpfs when there is one (opening
/// fsyncs, which a disk makes slow).
fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| {
        let shm = std::path::Path::new("/dev/shm");
        let tmp = if shm.is_dir() {
            tempfile::tempdir_in(shm)
        } else {
            tempfile::tempdir()
        }
        .expect("scratch directory");
        let dir = tmp.path().join("log");
        (tmp, dir)
    })
    .1
}

fuzz_target!(|data: &[u8]| {
    let files = murakami::fuzzing::image(data);
    let _ = murakami::fuzzing::open_dir(scratch(), &files);
});
