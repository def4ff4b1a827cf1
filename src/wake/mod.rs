//! Waiting and waking: how a thread sleeps until something moves, and how
//! the one that moves it wakes it, with no cost when nobody sleeps.
//!
//! What it owns: [`word`], a counter threads sleep on until it moves (a
//! futex; group commit's followers and the preparing thread sleep on one),
//! and [`notify`], the readers' wait for new records (a registration count
//! the producer reads per append, and a condition variable), and
//! [`remote`], the same for readers in other processes (a process-shared
//! futex in the control file).
//!
//! What it may call: `primitives`, `storage` (the control file's words)
//! and the system calls it wraps.

pub(crate) mod notify;
pub(crate) mod remote;
pub(crate) mod word;
