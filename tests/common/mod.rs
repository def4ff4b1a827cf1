//! Helpers shared by the integration tests: payloads that name their
//! offset, and a reader of segment files that knows the format independently
//! of the library (an oracle, not a copy of its scanner).
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

/// Deterministic payload for record `i`: its length varies, its bytes name
/// it, so a misplaced or torn record cannot pass for another.
pub fn payload(i: u64) -> Vec<u8> {
    let len = (i.wrapping_mul(37) % 300) as usize;
    (0..len).map(|j| (i as usize * 31 + j * 7) as u8).collect()
}

/// Segment files of a log directory, oldest first.
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    files.sort();
    files
}

/// Every file of `dir`, by name: its bytes and modification time (to check
/// that something changed nothing).
pub fn dir_state(
    dir: &Path,
) -> std::collections::BTreeMap<String, (Vec<u8>, std::time::SystemTime)> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let mtime = fs::metadata(&path).unwrap().modified().unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, (fs::read(&path).unwrap(), mtime))
        })
        .collect()
}

/// Base offset a segment file is named for.
pub fn base_of(path: &Path) -> u64 {
    path.file_stem().unwrap().to_str().unwrap().parse().unwrap()
}

pub const HEADER: usize = 64;
pub const FRAME_HEADER: usize = 32;

/// Length of the frame holding a payload of `len` bytes.
pub fn frame_len(len: usize) -> usize {
    (FRAME_HEADER + len + 7) & !7
}

/// `(position, payload length)` of each frame in a segment file, walking the
/// length words from the first frame until an all-zero header.
pub fn frames(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut pos = HEADER;
    while pos + FRAME_HEADER <= bytes.len() {
        let head = &bytes[pos..pos + FRAME_HEADER];
        if head.iter().all(|&b| b == 0) {
            break;
        }
        let word = u32::from_le_bytes(head[4..8].try_into().unwrap());
        let len = (word & 0x7FFF_FFFF) as usize;
        if pos + frame_len(len) > bytes.len() {
            break;
        }
        out.push((pos, len));
        pos += frame_len(len);
    }
    out
}

/// Copies the regular files of `from` into `to` (created): what a process
/// crash leaves, taken while the log is open.
pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// How a simulated power loss treats the bytes past the durable offset.
#[derive(Clone, Copy, Debug)]
pub enum Loss {
    /// They never reached the disk: zeros.
    Zeroed,
    /// Random garbage over the first `n` bytes past the durable point.
    Garbage(usize, u64),
    /// The file was cut at the durable point.
    Truncated,
    /// They reached the disk whole (nothing lost).
    Kept,
    /// Only the first `n` bytes of the first non-durable frame reached the
    /// disk (a torn write); the rest is zeros.
    Torn(usize),
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Damages a crash copy of a log: in every segment, the bytes from the first
/// record at or after `durable` on are treated as `loss` says. Segments that
/// start at or after `durable` (and are not the first) may also vanish, as
/// unsynced directory entries can.
pub fn lose_after(dir: &Path, durable: u64, loss: Loss, drop_new_segments: bool) {
    let files = segment_files(dir);
    for (n, path) in files.iter().enumerate() {
        let base = base_of(path);
        if n > 0 && base >= durable && drop_new_segments {
            fs::remove_file(path).unwrap();
            continue;
        }
        let mut bytes = fs::read(path).unwrap();
        let frames = frames(&bytes);
        let keep = frames
            .iter()
            .enumerate()
            .find(|(i, _)| base + *i as u64 >= durable)
            .map(|(_, (pos, _))| *pos);
        let Some(cut) = keep else { continue };
        match loss {
            Loss::Kept => {}
            Loss::Zeroed => bytes[cut..].fill(0),
            Loss::Torn(n) => {
                let n = n.min(bytes.len() - cut);
                bytes[cut + n..].fill(0);
            }
            Loss::Garbage(n, seed) => {
                let mut state = seed | 1;
                let end = (cut + n).min(bytes.len());
                for b in &mut bytes[cut..end] {
                    *b = xorshift(&mut state) as u8;
                }
                bytes[end..].fill(0);
            }
            Loss::Truncated => bytes.truncate(cut),
        }
        fs::write(path, &bytes).unwrap();
    }
}

/// splitmix64: a small, seeded generator for reproducible tests.
pub struct Rng(pub u64);

impl Rng {
    /// A generator whose stream depends on every bit of `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    pub fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    /// Uniform in `lo..hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.index(hi - lo)
    }
}

/// How many times longer a soak runs: `MURAKAMI_SOAK` (default 1).
pub fn soak() -> u64 {
    std::env::var("MURAKAMI_SOAK")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1)
}
