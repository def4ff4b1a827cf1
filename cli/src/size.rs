//! Sizes given on the command line: `65536`, `64KiB`, `64k`, `1 MiB`, `2G`
//! (binary units: a K is 1024 bytes).

/// Parses a size in bytes (clap value parser).
pub fn parse(arg: &str) -> Result<u64, String> {
    parse_size::Config::new()
        .with_binary()
        .parse_size(arg)
        .map_err(|e| format!("{arg:?} is not a size ({e}): give bytes, or 64KiB, 1MiB, 2G"))
}

/// [`parse`] for a `usize`.
pub fn parse_usize(arg: &str) -> Result<usize, String> {
    let n = parse(arg)?;
    usize::try_from(n).map_err(|_| format!("{arg:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_units_and_bad_ones_say_why() {
        assert_eq!(parse("65536"), Ok(65536));
        assert_eq!(parse("64KiB"), Ok(65536));
        assert_eq!(parse("64k"), Ok(65536));
        assert_eq!(parse("1 MiB"), Ok(1 << 20));
        assert_eq!(parse("2G"), Ok(2 << 30));
        assert_eq!(parse_usize("1M"), Ok(1 << 20));
        assert!(parse("lots").unwrap_err().contains("not a size"));
        assert!(parse("-1").is_err());
    }
}
