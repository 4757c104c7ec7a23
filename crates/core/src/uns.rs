//! The unstructured annotations tree (scanpy's `uns`), as stages record their parameters and
//! results (`uns["pca"]["variance_ratio"]`, `uns["hvg"]["flavor"]`, `uns["log1p"]["base"]`).

/// One node of `uns`.
#[derive(Clone, Debug, PartialEq)]
pub enum Uns {
    /// Python's None.
    Null,
    /// A boolean scalar.
    Bool(bool),
    /// An integer scalar.
    Int(i64),
    /// A float scalar.
    Float(f64),
    /// A string scalar.
    Str(String),
    /// A float64 array.
    FloatArray(Vec<f64>),
    /// A string array.
    StrArray(Vec<String>),
    /// A mapping with ordered keys.
    Map(Vec<(String, Uns)>),
}

impl Default for Uns {
    /// An empty mapping, the root of an AnnData's `uns`.
    fn default() -> Self {
        Uns::map()
    }
}

impl Uns {
    /// An empty mapping.
    pub fn map() -> Self {
        Uns::Map(Vec::new())
    }

    /// Set `key` in a mapping (replacing an existing entry); no-op on a non-mapping.
    pub fn insert(&mut self, key: &str, value: Uns) {
        if let Uns::Map(entries) = self {
            match entries.iter_mut().find(|(k, _)| k == key) {
                Some(slot) => slot.1 = value,
                None => entries.push((key.to_string(), value)),
            }
        }
    }

    /// Builder form of [`Uns::insert`].
    pub fn with(mut self, key: &str, value: Uns) -> Self {
        self.insert(key, value);
        self
    }

    /// The entry `key` of a mapping.
    pub fn get(&self, key: &str) -> Option<&Uns> {
        match self {
            Uns::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}
