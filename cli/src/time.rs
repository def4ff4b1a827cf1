//! Record timestamps (nanoseconds since the Unix epoch) in and out.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A timestamp as people read it: RFC 3339, UTC, to the microsecond.
pub fn human(nanos: u64) -> String {
    let at = UNIX_EPOCH + Duration::from_nanos(nanos);
    humantime::format_rfc3339_micros(at).to_string()
}

/// Parses a point in time given on the command line: an RFC 3339 time
/// (`2026-12-03T14:00:00Z`, or without the zone, read as UTC), a
/// duration before now (`10s`, `5m`, `2h 30m`, each optionally followed by
/// ` ago`), or a raw timestamp in nanoseconds since the epoch (all digits).
pub fn parse(arg: &str) -> Result<u64, String> {
    let arg = arg.trim();
    if !arg.is_empty() && arg.bytes().all(|b| b.is_ascii_digit()) {
        return arg.parse::<u64>().map_err(|e| format!("{arg:?}: {e}"));
    }
    if let Ok(at) = humantime::parse_rfc3339_weak(arg) {
        return nanos_since_epoch(at).ok_or_else(|| {
            format!("{arg:?} is outside 1970 to 2554 (nanoseconds since the epoch in 64 bits)")
        });
    }
    let ago = arg.strip_suffix("ago").map_or(arg, str::trim_end);
    match humantime::parse_duration(ago) {
        Ok(d) => {
            let at = SystemTime::now()
                .checked_sub(d)
                .ok_or_else(|| format!("{arg:?} is too long ago"))?;
            nanos_since_epoch(at).ok_or_else(|| {
                format!("{arg:?} is outside 1970 to 2554 (nanoseconds since the epoch in 64 bits)")
            })
        }
        Err(_) => Err(format!(
            "{arg:?} is not a time: give an RFC 3339 time (2026-12-03T14:00:00Z), \
             a duration before now (5m, 2h ago) or nanoseconds since the epoch"
        )),
    }
}

fn nanos_since_epoch(at: SystemTime) -> Option<u64> {
    let d = at.duration_since(UNIX_EPOCH).ok()?;
    u64::try_from(d.as_nanos()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_and_bad_ones_say_why() {
        let t = 1_764_770_400_123_456_000;
        assert_eq!(human(t), "2025-12-03T14:00:00.123456Z");
        assert_eq!(parse(&human(t)), Ok(t));
        assert_eq!(parse("2025-12-03T14:00:00"), Ok(1_764_770_400_000_000_000));
        assert_eq!(parse("42"), Ok(42));
        let now = nanos_since_epoch(SystemTime::now()).unwrap();
        for arg in ["5m", "5m ago", "5min ago"] {
            let got = parse(arg).unwrap();
            let expected = now - 300_000_000_000;
            assert!(got.abs_diff(expected) < 60_000_000_000, "{arg}: {got}");
        }
        assert!(parse("yesterday-ish").unwrap_err().contains("not a time"));
        assert!(parse("1969-01-01T00:00:00Z").is_err(), "before the epoch");
    }
}
