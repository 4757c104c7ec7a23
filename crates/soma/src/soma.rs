//! SOMA objects over TileDB: a group is a Collection, Experiment or Measurement; an array
//! is a DataFrame or a Sparse/DenseNDArray. The kind is the `soma_object_type` metadata
//! key. Members are found by name, so `obs`, `ms/RNA/X/raw` navigate as in tiledbsoma.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arrow::record_batch::RecordBatch;

use crate::array::TileDbArray;
use crate::bands::XReader;
use crate::blocks::{Blocks, blocks};
use crate::coords::Coords;
use crate::error::{Result, SomaError, not_found, unsupported};
use crate::group::{Member, MemberType, read_members};
use crate::metadata::{Metadata, read_metadata};
use crate::read::SparseReader;
use crate::storage::{LocalStorage, Storage, join};

/// The SOMA kind of an object, from its `soma_object_type` metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SomaKind {
    /// `SOMACollection`.
    Collection,
    /// `SOMAExperiment`.
    Experiment,
    /// `SOMAMeasurement`.
    Measurement,
    /// `SOMADataFrame`.
    DataFrame,
    /// `SOMASparseNDArray`.
    SparseNDArray,
    /// `SOMADenseNDArray`.
    DenseNDArray,
    /// Another value, or no `soma_object_type` (a plain TileDB object).
    Other(Option<String>),
}

impl SomaKind {
    /// The `soma_object_type` spelling (`SOMADataFrame`, ...), for messages.
    pub fn name(&self) -> &str {
        match self {
            SomaKind::Collection => "SOMACollection",
            SomaKind::Experiment => "SOMAExperiment",
            SomaKind::Measurement => "SOMAMeasurement",
            SomaKind::DataFrame => "SOMADataFrame",
            SomaKind::SparseNDArray => "SOMASparseNDArray",
            SomaKind::DenseNDArray => "SOMADenseNDArray",
            SomaKind::Other(Some(s)) => s,
            SomaKind::Other(None) => "plain TileDB object",
        }
    }

    fn from_metadata(meta: &Metadata) -> Self {
        match meta.get("soma_object_type").and_then(|v| v.as_str()) {
            Some("SOMACollection") => SomaKind::Collection,
            Some("SOMAExperiment") => SomaKind::Experiment,
            Some("SOMAMeasurement") => SomaKind::Measurement,
            Some("SOMADataFrame") => SomaKind::DataFrame,
            Some("SOMASparseNDArray") => SomaKind::SparseNDArray,
            Some("SOMADenseNDArray") => SomaKind::DenseNDArray,
            other => SomaKind::Other(other.map(str::to_string)),
        }
    }
}

/// A SOMA group: Collection, Experiment or Measurement.
#[derive(Debug, Clone)]
pub struct SomaGroup {
    storage: Arc<dyn Storage>,
    path: String,
    kind: SomaKind,
    members: BTreeMap<String, Member>,
    metadata: Metadata,
}

/// A SOMA array: DataFrame or N-dimensional array.
#[derive(Debug, Clone)]
pub struct SomaArray {
    kind: SomaKind,
    array: TileDbArray,
}

/// Any SOMA object.
#[derive(Debug, Clone)]
pub enum SomaObject {
    /// A group.
    Group(SomaGroup),
    /// An array.
    Array(SomaArray),
}

/// Opens the SOMA object at `path` of `storage` (a group or an array).
pub fn open(storage: Arc<dyn Storage>, path: &str) -> Result<SomaObject> {
    if storage.exists(&join(path, "__tiledb_group.tdb"))?
        || !storage.list(&join(path, "__group"))?.is_empty()
    {
        let members = read_members(storage.as_ref(), path)?;
        let metadata = read_metadata(storage.as_ref(), path)?;
        let kind = SomaKind::from_metadata(&metadata);
        return Ok(SomaObject::Group(SomaGroup {
            storage,
            path: path.to_string(),
            kind,
            members,
            metadata,
        }));
    }
    if !storage.list(&join(path, "__schema"))?.is_empty() {
        let array = TileDbArray::open(storage, path)?;
        let kind = SomaKind::from_metadata(array.metadata());
        return Ok(SomaObject::Array(SomaArray { kind, array }));
    }
    Err(not_found(
        &storage.location(path),
        "not a TileDB group or array",
    ))
}

/// Opens the SOMA object in the local directory `path`.
pub fn open_local(path: impl AsRef<Path>) -> Result<SomaObject> {
    open(Arc::new(LocalStorage::new(path.as_ref())), "")
}

impl SomaObject {
    /// The object's full location, for messages.
    pub fn location(&self) -> String {
        match self {
            SomaObject::Group(g) => g.location(),
            SomaObject::Array(a) => a.array.location(),
        }
    }

    /// The object's SOMA kind.
    pub fn kind(&self) -> &SomaKind {
        match self {
            SomaObject::Group(g) => &g.kind,
            SomaObject::Array(a) => &a.kind,
        }
    }

    /// The object's metadata.
    pub fn metadata(&self) -> &Metadata {
        match self {
            SomaObject::Group(g) => &g.metadata,
            SomaObject::Array(a) => a.array.metadata(),
        }
    }

    /// The group, or an error naming the object when it is an array.
    pub fn into_group(self) -> Result<SomaGroup> {
        match self {
            SomaObject::Group(g) => Ok(g),
            SomaObject::Array(a) => Err(not_found(&a.array.location(), "is an array, not a group")),
        }
    }

    /// The array, or an error naming the object when it is a group.
    pub fn into_array(self) -> Result<SomaArray> {
        match self {
            SomaObject::Array(a) => Ok(a),
            SomaObject::Group(g) => Err(not_found(
                &g.storage.location(&g.path),
                "is a group, not an array",
            )),
        }
    }
}

impl SomaGroup {
    /// The group's SOMA kind.
    pub fn kind(&self) -> &SomaKind {
        &self.kind
    }

    /// The group's metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// Member names, sorted.
    pub fn member_names(&self) -> Vec<&str> {
        self.members.keys().map(String::as_str).collect()
    }

    /// The member list.
    pub fn members(&self) -> &BTreeMap<String, Member> {
        &self.members
    }

    /// The group's full location, for messages.
    pub fn location(&self) -> String {
        self.storage.location(&self.path)
    }

    /// The storage the group is read from.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// The path of the group in its storage.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// This group, or a [`SomaError::WrongKind`] naming it when it is of another kind.
    pub fn expect_kind(self, kind: SomaKind) -> Result<Self> {
        if self.kind == kind {
            Ok(self)
        } else {
            Err(SomaError::WrongKind {
                path: self.location(),
                expected: kind.name().to_string(),
                found: self.kind.name().to_string(),
            })
        }
    }

    /// Opens member `name`.
    pub fn member(&self, name: &str) -> Result<SomaObject> {
        let loc = self.storage.location(&self.path);
        let m = self
            .members
            .get(name)
            .ok_or_else(|| not_found(&loc, format!("no member named {name:?}")))?;
        if !m.relative {
            return Err(unsupported(
                &loc,
                format!("member {name} has an absolute URI ({})", m.uri),
            ));
        }
        let path = join(&self.path, &m.uri);
        let obj = open(Arc::clone(&self.storage), &path)?;
        let found = matches!(obj, SomaObject::Group(_));
        if found != (m.kind == MemberType::Group) {
            return Err(not_found(
                &self.storage.location(&path),
                format!("member {name} is not a {:?}", m.kind),
            ));
        }
        Ok(obj)
    }

    /// Opens the object at a `/`-separated member path such as `ms/RNA/X/raw`.
    pub fn open_path(&self, member_path: &str) -> Result<SomaObject> {
        let mut parts = member_path.split('/').filter(|p| !p.is_empty());
        let first = parts
            .next()
            .ok_or_else(|| not_found(&self.storage.location(&self.path), "empty member path"))?;
        let mut obj = self.member(first)?;
        for part in parts {
            obj = obj.into_group()?.member(part)?;
        }
        Ok(obj)
    }
}

impl SomaArray {
    /// The array's SOMA kind.
    pub fn kind(&self) -> &SomaKind {
        &self.kind
    }

    /// The underlying TileDB array (schema, fragments, R-trees).
    pub fn tiledb(&self) -> &TileDbArray {
        &self.array
    }

    /// The SOMA shape (from the current domain).
    pub fn shape(&self) -> Vec<Option<u64>> {
        self.array.schema().shape()
    }

    /// Reads every cell: the named columns, or all (dimensions first).
    pub fn read(&self, columns: Option<&[&str]>) -> Result<RecordBatch> {
        self.array.read(columns)
    }

    /// A range reader of the named columns (or all), for repeated dim-0 selections.
    pub fn reader(&self, columns: Option<&[&str]>) -> Result<SparseReader> {
        SparseReader::new(&self.array, columns)
    }

    /// The cells whose dim-0 coordinate (a DataFrame's soma_joinid) `coords` selects:
    /// the named columns (or all), sorted by coordinates. Decodes only the data tiles
    /// that intersect the selection.
    pub fn read_coords(&self, columns: Option<&[&str]>, coords: &Coords) -> Result<RecordBatch> {
        self.reader(columns)?.read(coords)
    }

    /// Streams the cells `coords` selects as one record batch per `block_rows` dim-0
    /// coordinates (see [`crate::blocks::blocks`]).
    pub fn blocks(
        &self,
        columns: Option<&[&str]>,
        coords: Coords,
        block_rows: i64,
    ) -> Result<Blocks> {
        Ok(blocks(Arc::new(self.reader(columns)?), coords, block_rows))
    }

    /// A CSR row reader of this two-dimensional SparseNDArray (Census X).
    pub fn x_reader(&self) -> Result<XReader> {
        XReader::new(&self.array)
    }

    /// This array, or a [`SomaError::WrongKind`] naming it when it is of another kind.
    pub fn expect_kind(self, kind: SomaKind) -> Result<Self> {
        if self.kind == kind {
            Ok(self)
        } else {
            Err(SomaError::WrongKind {
                path: self.array.location(),
                expected: kind.name().to_string(),
                found: self.kind.name().to_string(),
            })
        }
    }
}
