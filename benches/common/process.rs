//! Readers in other processes for the benchmarks: the bench binary runs
//! itself again with a role in its environment ([`ROLE`]); the helper says
//! on its stdout when it is ready, and writes what it measured there when
//! it is done. Also the clock and the per-thread counters both sides read.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::str::FromStr;

/// The environment variable that names a helper process's role.
pub const ROLE: &str = "MURAKAMI_BENCH_ROLE";

/// The line a helper writes once it is ready.
const READY: &str = "ready";

/// This process's role, if it is a helper.
pub fn role() -> Option<String> {
    std::env::var(ROLE).ok()
}

/// In a helper: the environment variable `name`, parsed.
pub fn var<T: FromStr>(name: &str) -> T {
    let value = std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    value
        .parse()
        .unwrap_or_else(|_| panic!("{name}={value} does not parse"))
}

/// In a helper: tells the parent it is ready.
pub fn ready() {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{READY}").expect("write to the parent");
    out.flush().expect("flush to the parent");
}

/// In a helper: hands `bytes` to the parent (after [`ready`]).
pub fn report(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes).expect("write to the parent");
    out.flush().expect("flush to the parent");
}

/// A helper process: this bench binary again, in another role. Killed (by
/// its id) if dropped before [`Helper::finish`].
pub struct Helper {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl Helper {
    /// Starts this binary again as `role`, with `vars` in its environment.
    pub fn spawn(role: &str, vars: &[(&str, String)]) -> Helper {
        let exe = std::env::current_exe().expect("the bench binary's path");
        let mut command = Command::new(exe);
        command
            .env(ROLE, role)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (name, value) in vars {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("start a helper process");
        let out = BufReader::new(child.stdout.take().expect("the helper's stdout"));
        Helper { child, out }
    }

    /// Waits until the helper says it is ready.
    pub fn wait_ready(&mut self) {
        let mut line = String::new();
        self.out.read_line(&mut line).expect("read from a helper");
        assert_eq!(
            line.trim_end(),
            READY,
            "the helper failed before it was ready"
        );
    }

    /// Waits for the helper to exit; returns what it reported.
    pub fn finish(mut self) -> Vec<u8> {
        let mut bytes = Vec::new();
        self.out
            .read_to_end(&mut bytes)
            .expect("read from a helper");
        let status = self.child.wait().expect("wait for a helper");
        assert!(status.success(), "a helper process failed: {status}");
        bytes
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds: the clock `Instant` reads on Linux,
/// as a raw value that another process on the same machine can compare
/// with its own (an `Instant` cannot leave its process).
#[inline(always)]
pub fn monotonic_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one `timespec` through the pointer,
    // which points to one.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    debug_assert_eq!(rc, 0);
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// CPU time of the calling thread, in nanoseconds (a system call: read it
/// around a long stretch of work, not around one append).
pub fn thread_cpu_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: as in `monotonic_ns`.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    debug_assert_eq!(rc, 0);
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// Context switches of the calling thread so far.
#[derive(Clone, Copy, Debug, Default)]
pub struct Switches {
    /// It gave the CPU up: it slept (a futex wait, a `sleep`).
    pub voluntary: i64,
    /// It was preempted.
    pub involuntary: i64,
}

/// [`Switches`] of the calling thread so far (zeros if `getrusage` fails).
pub fn switches() -> Switches {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes one `rusage` through the pointer, which
    // points to a `rusage`.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, usage.as_mut_ptr()) };
    if rc != 0 {
        return Switches::default();
    }
    // SAFETY: zero-initialised (a valid `rusage`) and then filled in.
    let usage = unsafe { usage.assume_init() };
    Switches {
        voluntary: usage.ru_nvcsw,
        involuntary: usage.ru_nivcsw,
    }
}

/// Keeps the calling thread on CPU `cpu` (`None`: lets it run on any).
/// Threads it starts afterwards inherit the choice.
pub fn pin_to(cpu: Option<usize>) {
    // SAFETY: a zeroed `cpu_set_t` is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // Not `available_parallelism`: it counts the calling thread's CPUs,
    // which is one once it was pinned.
    // SAFETY: sysconf has no memory-safety preconditions.
    let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_CONF) }.clamp(1, 1024) as usize;
    for c in (0..cpus).filter(|&c| cpu.is_none_or(|cpu| cpu == c)) {
        // SAFETY: `c` is below 1024, the size of a `cpu_set_t` in bits.
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    // SAFETY: sched_setaffinity reads one `cpu_set_t` of the given size
    // through the pointer; 0 is the calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) };
    assert_eq!(
        rc,
        0,
        "sched_setaffinity: {}",
        std::io::Error::last_os_error()
    );
}

/// Time the hypervisor gave this machine's CPUs to others so far, summed
/// over the CPUs, in milliseconds (the `steal` column of `/proc/stat`;
/// 0 where there is none).
pub fn steal_ms() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks = stat
        .lines()
        .next()
        .and_then(|cpu| cpu.split_whitespace().nth(8))
        .and_then(|steal| steal.parse::<u64>().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    ticks * 1000 / hz
}
