//! The segment scanner over arbitrary bytes: header, checkpoint, frames and
//! the look past a bad frame. `murakami::fuzzing::scan_segment` panics if
//! the scanner contradicts the bytes; any other panic or out-of-bounds read
//! is a bug too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = murakami::fuzzing::scan_segment(data);
});
