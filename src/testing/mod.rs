//! Test machinery, never in a user's build: the crash simulator and its
//! sweeps (`cfg(test)`), the fuzzing entry points (`cfg(fuzzing)`, which
//! cargo-fuzz sets, or `cfg(test)`), and the loom models' entry points (the
//! `loom` feature).

#[cfg(all(test, not(feature = "loom")))]
mod crash;
#[cfg(all(any(fuzzing, test), not(feature = "loom")))]
pub mod fuzzing;
#[cfg(feature = "loom")]
pub mod loom_api;
#[cfg(all(test, not(feature = "loom")))]
pub(crate) mod sim;
