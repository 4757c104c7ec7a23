//! Navigating a CZ CELLxGENE Census root the way `cellxgene_census` does:
//! `census_info/{datasets, summary, summary_cell_counts}` and, per organism,
//! `census_data/<organism>/{obs, ms/<measurement>/{var, X/<layer>,
//! feature_dataset_presence_matrix}}`. Each accessor checks the member exists and has
//! the SOMA kind the Census gives it; errors name the member and what was found.

use std::path::Path;
use std::sync::Arc;

use crate::error::{Result, SomaError, not_found};
use crate::metadata::Metadata;
use crate::soma::{SomaArray, SomaGroup, SomaKind, SomaObject, open};
use crate::storage::{LocalStorage, Storage};

/// The measurement every Census organism has.
pub const RNA: &str = "RNA";

/// The member name of an organism as `cellxgene_census` spells it: lower case, runs of
/// whitespace as one `_` ("Homo sapiens" → "homo_sapiens").
pub fn organism_member_name(organism: &str) -> String {
    organism
        .split_whitespace()
        .collect::<Vec<_>>()
        .join("_")
        .to_lowercase()
}

/// An open Census root collection.
#[derive(Debug, Clone)]
pub struct Census {
    root: SomaGroup,
}

/// One organism's experiment of a Census (`census_data/<organism>`).
#[derive(Debug, Clone)]
pub struct CensusExperiment {
    name: String,
    group: SomaGroup,
}

/// Member `name` of `group`, which must be of `kind`.
fn member_of_kind(group: &SomaGroup, name: &str, kind: SomaKind) -> Result<SomaObject> {
    if !group.members().contains_key(name) {
        return Err(not_found(
            &group.location(),
            format!(
                "no member {name:?} (a {} is expected there; members: {})",
                kind.name(),
                group.member_names().join(", ")
            ),
        ));
    }
    let obj = group.member(name)?;
    if obj.kind() != &kind {
        return Err(SomaError::WrongKind {
            path: obj.location(),
            expected: kind.name().to_string(),
            found: obj.kind().name().to_string(),
        });
    }
    Ok(obj)
}

fn group_of_kind(group: &SomaGroup, name: &str, kind: SomaKind) -> Result<SomaGroup> {
    member_of_kind(group, name, kind)?.into_group()
}

fn array_of_kind(group: &SomaGroup, name: &str, kind: SomaKind) -> Result<SomaArray> {
    member_of_kind(group, name, kind)?.into_array()
}

impl Census {
    /// Opens the Census root at `path` of `storage` (a SOMACollection holding
    /// `census_info` and `census_data`).
    pub fn open(storage: Arc<dyn Storage>, path: &str) -> Result<Self> {
        let root = open(storage, path)?
            .into_group()?
            .expect_kind(SomaKind::Collection)?;
        for name in ["census_info", "census_data"] {
            if !root.members().contains_key(name) {
                return Err(not_found(
                    &root.location(),
                    format!("not a Census root: no member {name:?}"),
                ));
            }
        }
        Ok(Census { root })
    }

    /// Opens the Census root in local directory `path`.
    pub fn open_local(path: impl AsRef<Path>) -> Result<Self> {
        Self::open(Arc::new(LocalStorage::new(path.as_ref())), "")
    }

    /// The root collection (its metadata holds `census_schema_version`, ...).
    pub fn root(&self) -> &SomaGroup {
        &self.root
    }

    /// The root's metadata.
    pub fn metadata(&self) -> &Metadata {
        self.root.metadata()
    }

    /// `census_info`.
    pub fn census_info(&self) -> Result<SomaGroup> {
        group_of_kind(&self.root, "census_info", SomaKind::Collection)
    }

    /// `census_info/datasets`: one row per dataset (dataset_id, title, cell counts...).
    pub fn datasets(&self) -> Result<SomaArray> {
        array_of_kind(&self.census_info()?, "datasets", SomaKind::DataFrame)
    }

    /// `census_info/summary`: label/value pairs (census_schema_version, ...).
    pub fn summary(&self) -> Result<SomaArray> {
        array_of_kind(&self.census_info()?, "summary", SomaKind::DataFrame)
    }

    /// `census_info/summary_cell_counts`.
    pub fn summary_cell_counts(&self) -> Result<SomaArray> {
        array_of_kind(
            &self.census_info()?,
            "summary_cell_counts",
            SomaKind::DataFrame,
        )
    }

    /// `census_data`.
    pub fn census_data(&self) -> Result<SomaGroup> {
        group_of_kind(&self.root, "census_data", SomaKind::Collection)
    }

    /// The organisms' member names (`homo_sapiens`, `mus_musculus`, ...).
    pub fn organisms(&self) -> Result<Vec<String>> {
        Ok(self
            .census_data()?
            .member_names()
            .into_iter()
            .map(str::to_string)
            .collect())
    }

    /// The experiment of `organism` ("Homo sapiens" or "homo_sapiens").
    pub fn experiment(&self, organism: &str) -> Result<CensusExperiment> {
        let data = self.census_data()?;
        let name = organism_member_name(organism);
        if !data.members().contains_key(&name) {
            return Err(not_found(
                &data.location(),
                format!(
                    "no organism {organism:?} (member {name:?}); the Census has: {}",
                    data.member_names().join(", ")
                ),
            ));
        }
        let group = group_of_kind(&data, &name, SomaKind::Experiment)?;
        Ok(CensusExperiment { name, group })
    }
}

impl CensusExperiment {
    /// The organism's member name (`homo_sapiens`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The experiment group.
    pub fn group(&self) -> &SomaGroup {
        &self.group
    }

    /// `obs`: one row per cell.
    pub fn obs(&self) -> Result<SomaArray> {
        array_of_kind(&self.group, "obs", SomaKind::DataFrame)
    }

    /// `ms/<measurement>` (the Census has only `RNA`).
    pub fn measurement(&self, measurement: &str) -> Result<SomaGroup> {
        let ms = group_of_kind(&self.group, "ms", SomaKind::Collection)?;
        group_of_kind(&ms, measurement, SomaKind::Measurement)
    }

    /// `ms/<measurement>/var`: one row per gene (feature_id, feature_name,
    /// feature_length, nnz, n_measured_obs).
    pub fn var(&self, measurement: &str) -> Result<SomaArray> {
        array_of_kind(&self.measurement(measurement)?, "var", SomaKind::DataFrame)
    }

    /// `ms/<measurement>/X/<layer>` (`raw`, `normalized`): cells × genes.
    pub fn x(&self, measurement: &str, layer: &str) -> Result<SomaArray> {
        let x = group_of_kind(&self.measurement(measurement)?, "X", SomaKind::Collection)?;
        array_of_kind(&x, layer, SomaKind::SparseNDArray)
    }

    /// `ms/<measurement>/feature_dataset_presence_matrix`: datasets × genes, true where
    /// the dataset measured the gene.
    pub fn feature_dataset_presence_matrix(&self, measurement: &str) -> Result<SomaArray> {
        array_of_kind(
            &self.measurement(measurement)?,
            "feature_dataset_presence_matrix",
            SomaKind::SparseNDArray,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn organism_names_as_cellxgene_census_spells_them() {
        assert_eq!(organism_member_name("Homo sapiens"), "homo_sapiens");
        assert_eq!(organism_member_name(" Mus  musculus "), "mus_musculus");
        assert_eq!(organism_member_name("homo_sapiens"), "homo_sapiens");
    }
}
