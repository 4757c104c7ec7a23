//! Timestamped names: `__<t1>_<t2>_<uuid>[_<version>]`, the names of fragments, commits,
//! schemas, metadata and group files. Files are replayed in (t1, t2) order.

/// A parsed timestamped name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimestampedName {
    /// Start of the time range, in milliseconds since the epoch.
    pub t1: u64,
    /// End of the time range.
    pub t2: u64,
    /// The 32-hex-digit UUID.
    pub uuid: String,
    /// The format version suffix, when present.
    pub version: Option<u32>,
}

impl TimestampedName {
    /// Parses `name` (a file or directory name, possibly with an extension such as
    /// `.wrt`); `None` when it is not a timestamped name.
    pub fn parse(name: &str) -> Option<Self> {
        let stem = name.split('.').next()?;
        let rest = stem.strip_prefix("__")?;
        let mut parts = rest.split('_');
        let t1 = parts.next()?.parse().ok()?;
        let t2 = parts.next()?.parse().ok()?;
        let uuid = parts.next()?;
        if uuid.len() != 32 || !uuid.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let version = match parts.next() {
            Some(v) => Some(v.parse().ok()?),
            None => None,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(TimestampedName {
            t1,
            t2,
            uuid: uuid.to_string(),
            version,
        })
    }
}

/// Sorts names by their timestamps (then by name); names that do not parse are dropped.
pub(crate) fn sort_by_time(
    names: impl IntoIterator<Item = String>,
) -> Vec<(TimestampedName, String)> {
    let mut out: Vec<(TimestampedName, String)> = names
        .into_iter()
        .filter_map(|n| TimestampedName::parse(&n).map(|t| (t, n)))
        .collect();
    out.sort_by(|a, b| (a.0.t1, a.0.t2, &a.1).cmp(&(b.0.t1, b.0.t2, &b.1)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names() {
        let n = TimestampedName::parse(
            "__1796511516415_1796511516416_6812d6a9422b034bc7e6765d2fe4f51c_22.wrt",
        );
        assert_eq!(
            n.as_ref().map(|n| (n.t1, n.t2, n.version)),
            Some((1796511516415, 1796511516416, Some(22)))
        );
        assert!(TimestampedName::parse("__1_2_6812d6a9422b034bc7e6765d2fe4f51c").is_some());
        assert!(TimestampedName::parse("__tiledb_group.tdb").is_none());
        assert!(TimestampedName::parse("__1_2_xyz").is_none());
    }
}
