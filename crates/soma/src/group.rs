//! Groups (`__group/`): member lists, one generic tile per write, replayed in timestamp
//! order. SOMA Collections, Experiments and Measurements are groups.

use std::collections::BTreeMap;

use crate::cursor::Cursor;
use crate::error::{Result, corrupt};
use crate::metadata::live_files;
use crate::storage::{Storage, join};
use crate::tile::read_generic_file;

/// What a member is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberType {
    /// A group.
    Group,
    /// An array.
    Array,
}

/// A member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its name in the group.
    pub name: String,
    /// Its URI: relative to the group when `relative`, absolute otherwise.
    pub uri: String,
    /// Whether `uri` is relative to the group.
    pub relative: bool,
    /// Group or array.
    pub kind: MemberType,
}

/// Reads the members of the group at `group`, by name. A member file holds the group
/// format version u32 (2), a **u64** member count (the spec says u32), then per member:
/// its version u32, object type u8 (1 group, 2 array), relative u8, URI (u64 length +
/// bytes), name-set u8 and name (u64 length + bytes), deleted u8.
pub fn read_members(storage: &dyn Storage, group: &str) -> Result<BTreeMap<String, Member>> {
    let dir = join(group, "__group");
    let mut members = BTreeMap::new();
    for name in live_files(storage, &dir)? {
        let path = join(&dir, &name);
        let loc = storage.location(&path);
        let bytes = read_generic_file(storage, &path)?;
        let mut c = Cursor::new(&bytes, &loc);
        let version = c.u32()?;
        if !(1..=2).contains(&version) {
            return Err(crate::error::SomaError::UnsupportedVersion {
                path: loc,
                what: "group",
                version,
                supported: "1 and 2",
            });
        }
        let n = c.count_u64(15)?;
        for _ in 0..n {
            let _member_version = c.u32()?;
            let kind = match c.u8()? {
                1 => MemberType::Group,
                2 => MemberType::Array,
                other => return Err(corrupt(&loc, format!("unknown member object type {other}"))),
            };
            let relative = c.u8()? != 0;
            let uri = c.string_u64()?;
            let name_set = c.u8()? != 0;
            let name = if name_set {
                c.string_u64()?
            } else {
                uri.trim_end_matches('/')
                    .rsplit('/')
                    .next()
                    .unwrap_or(&uri)
                    .to_string()
            };
            let deleted = c.u8()? != 0;
            if deleted {
                members.remove(&name);
            } else {
                members.insert(
                    name.clone(),
                    Member {
                        name,
                        uri,
                        relative,
                        kind,
                    },
                );
            }
        }
        if c.remaining() != 0 {
            return Err(corrupt(
                &loc,
                format!("{} bytes after the members", c.remaining()),
            ));
        }
    }
    Ok(members)
}
