//! Opening a TileDB array: its latest schema, the schemas its fragments were written
//! with, its enumerations, its committed fragments (footers from consolidated fragment
//! metadata when present) and its metadata.

use std::collections::HashMap;
use std::sync::Arc;

use crate::commits::read_commits;
use crate::enumeration::Enumeration;
use crate::error::{Result, corrupt, not_found};
use crate::fragment::{Fragment, FragmentFooter, read_consolidated, read_own_footer};
use crate::metadata::{Metadata, read_metadata};
use crate::names::{TimestampedName, sort_by_time};
use crate::schema::ArraySchema;
use crate::storage::{Storage, file_names, join};
use crate::tile::read_generic_file;

/// An open TileDB array (read-only, at the current time: every committed fragment).
#[derive(Debug, Clone)]
pub struct TileDbArray {
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) path: String,
    pub(crate) schema: Arc<ArraySchema>,
    pub(crate) enumerations: HashMap<String, Arc<Enumeration>>,
    pub(crate) fragments: Vec<Fragment>,
    pub(crate) metadata: Metadata,
}

/// Loads schemas by file name, once each.
struct SchemaCache<'a> {
    storage: &'a dyn Storage,
    dir: String,
    loaded: HashMap<String, Arc<ArraySchema>>,
}

impl SchemaCache<'_> {
    fn get(&mut self, name: &str) -> Result<Arc<ArraySchema>> {
        if let Some(s) = self.loaded.get(name) {
            return Ok(Arc::clone(s));
        }
        if name.contains('/') || name.is_empty() {
            return Err(corrupt(
                &self.storage.location(&self.dir),
                format!("bad schema name {name:?}"),
            ));
        }
        let path = join(&self.dir, name);
        let bytes = read_generic_file(self.storage, &path)?;
        let schema = Arc::new(ArraySchema::parse(
            &bytes,
            name,
            &self.storage.location(&path),
        )?);
        self.loaded.insert(name.to_string(), Arc::clone(&schema));
        Ok(schema)
    }
}

impl TileDbArray {
    /// Opens the array at `path` (relative to the storage root).
    pub fn open(storage: Arc<dyn Storage>, path: &str) -> Result<Self> {
        let st: &dyn Storage = storage.as_ref();
        let schema_dir = join(path, "__schema");
        let latest = sort_by_time(file_names(st, &schema_dir)?)
            .pop()
            .map(|(_, n)| n)
            .ok_or_else(|| {
                not_found(
                    &st.location(path),
                    "not a TileDB array of format version 12 or later (no __schema/ file)",
                )
            })?;
        let mut cache = SchemaCache {
            storage: st,
            dir: schema_dir.clone(),
            loaded: HashMap::new(),
        };
        let schema = cache.get(&latest)?;

        let mut enumerations = HashMap::new();
        for (name, file) in &schema.enumerations {
            let p = join(&join(&schema_dir, "__enumerations"), file);
            let bytes = read_generic_file(st, &p)?;
            enumerations.insert(
                name.clone(),
                Arc::new(Enumeration::parse(&bytes, &st.location(&p))?),
            );
        }

        // Footers from consolidated fragment metadata, later files overriding earlier ones.
        let meta_dir = join(path, "__fragment_meta");
        let meta_files = file_names(st, &meta_dir)?
            .into_iter()
            .filter(|n| n.ends_with(".meta"));
        let mut consolidated: HashMap<String, (FragmentFooter, Arc<ArraySchema>)> = HashMap::new();
        for (_, f) in sort_by_time(meta_files) {
            for (name, footer, s) in
                read_consolidated(st, &join(&meta_dir, &f), &mut |n| cache.get(n))?
            {
                consolidated.insert(name, (footer, s));
            }
        }

        let commits = read_commits(st, path)?;
        let frag_dir = join(path, "__fragments");
        let frag_names: Vec<String> = st
            .list(&frag_dir)?
            .into_iter()
            .filter(|e| {
                e.is_dir
                    && commits.committed.contains(&e.name)
                    && !commits.excluded.contains(&e.name)
            })
            .map(|e| e.name)
            .collect();
        let mut fragments = Vec::new();
        for (timestamps, name) in sort_by_time(frag_names) {
            let dir = join(&frag_dir, &name);
            let (footer, fschema, footer_from_consolidated) = match consolidated.remove(&name) {
                Some((footer, s)) => (footer, s, true),
                None => {
                    let (footer, s) =
                        read_own_footer(st, &join(&dir, "__fragment_metadata.tdb"), &mut |n| {
                            cache.get(n)
                        })?;
                    (footer, s, false)
                }
            };
            fragments.push(Fragment {
                name,
                timestamps,
                dir,
                footer,
                schema: fschema,
                footer_from_consolidated,
            });
        }
        let metadata = read_metadata(st, path)?;
        Ok(TileDbArray {
            storage,
            path: path.to_string(),
            schema,
            enumerations,
            fragments,
            metadata,
        })
    }

    /// The latest schema.
    pub fn schema(&self) -> &ArraySchema {
        &self.schema
    }

    /// The committed fragments, oldest first.
    pub fn fragments(&self) -> &[Fragment] {
        &self.fragments
    }

    /// The array's metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The enumeration named `name` (of the latest schema).
    pub fn enumeration(&self, name: &str) -> Option<&Enumeration> {
        self.enumerations.get(name).map(Arc::as_ref)
    }

    /// The array's path in its storage.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The storage the array is read from.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// The array's full location, for messages.
    pub fn location(&self) -> String {
        self.storage.location(&self.path)
    }

    /// The timestamps of each fragment, oldest first.
    pub fn fragment_timestamps(&self) -> Vec<TimestampedName> {
        self.fragments
            .iter()
            .map(|f| f.timestamps.clone())
            .collect()
    }
}
