//! The YAML pipeline file, parsed with the line and column of every value so that errors
//! can point at them.
//!
//! ```yaml
//! name: census-smartseq2-liver
//! seed: 0
//! source:
//!   h5ad: ../data/example/smartseq2-example.h5ad   # relative to this file
//!   # or a store:  census: ../data/example/atlas, with organism, obs_filter, var_filter,
//!   #              genes (all | dataset_presence | dataset_presence_all), obs_columns
//! steps:
//!   - stage: filter_cells
//!     min_genes: 500
//!   - stage: normalize_total
//!     target_sum: 1e4
//!   - id: lognorm            # optional: name a step so others can start from it
//!     stage: log1p
//! outputs:
//!   - h5ad: results/liver.h5ad   # relative to --out, else to the working directory
//!     from: lognorm              # optional: default is the last step
//!   - parquet: results/cells.parquet   # obs and embeddings, one row per cell
//!   - plot: results/umap.png     # sc.pl.umap as a file (PNG or SVG)
//!     basis: umap
//!     color: cell_type
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::error::{EngineError, Result};

/// A parameter value as written in YAML.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Value {
    /// `null` or `~`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float (`1e4`, `.inf`).
    Float(f64),
    /// A string.
    Str(String),
    /// A list.
    List(Vec<Value>),
}

impl Value {
    /// The YAML type name, for errors.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Str(_) => "a string",
            Value::List(_) => "a list",
        }
    }

    /// Parse a `--set` value the way YAML would read it.
    pub fn parse_cli(text: &str) -> Value {
        serde_saphyr::from_str::<Value>(text).unwrap_or_else(|_| Value::Str(text.to_string()))
    }
}

/// A value with where it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct Located<T> {
    /// The value.
    pub value: T,
    /// 1-based line (0 for values given on the command line).
    pub line: u64,
    /// 1-based column.
    pub column: u64,
}

impl<T> From<Spanned<T>> for Located<T> {
    fn from(s: Spanned<T>) -> Self {
        Located { line: s.referenced.line(), column: s.referenced.column(), value: s.value }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPipeline {
    name: Option<String>,
    seed: Option<Spanned<u64>>,
    source: Spanned<BTreeMap<String, Spanned<Value>>>,
    steps: Spanned<Vec<Spanned<BTreeMap<String, Spanned<Value>>>>>,
    #[serde(default)]
    outputs: Vec<Spanned<BTreeMap<String, Spanned<Value>>>>,
}

/// Where cells come from.
#[derive(Clone, Debug)]
pub enum SourceSpec {
    /// An AnnData file.
    H5ad(PathBuf),
    /// Cells of an atlas store or a TileDB-SOMA Census selected as the Census selects them.
    Census(CensusSource),
}

/// A `census:` source: the atlas and the query (`get_anndata`'s arguments).
#[derive(Clone, Debug)]
pub struct CensusSource {
    /// The atlas: a store directory (made by `atlasflow ingest`), a TileDB-SOMA Census
    /// directory, or a Census URL (`s3://bucket/path`).
    pub uri: PathBuf,
    /// The query.
    pub query: atlasflow_atlas::CensusQuery,
    /// Lines of `obs_filter` and `var_filter`, for errors found when the filter meets the store.
    pub obs_filter_line: u64,
    /// See `obs_filter_line`.
    pub var_filter_line: u64,
}

/// Keys a `census:` source takes besides `census:` (the store).
pub const CENSUS_KEYS: [&str; 6] = ["organism", "measurement", "obs_filter", "var_filter", "genes", "obs_columns"];

impl SourceSpec {
    /// The file or directory cells are read from.
    pub fn path(&self) -> &Path {
        match self {
            SourceSpec::H5ad(p) => p,
            SourceSpec::Census(c) => &c.uri,
        }
    }

    /// One line saying what the source is.
    pub fn describe(&self) -> String {
        match self {
            SourceSpec::H5ad(p) => format!("h5ad {}", p.display()),
            SourceSpec::Census(c) => {
                let q = &c.query;
                let mut s = format!("census {}", c.uri.display());
                if let Some(o) = &q.organism {
                    s += &format!(", organism {o}");
                }
                if let Some(f) = &q.obs_filter {
                    s += &format!(", obs_filter \"{f}\"");
                }
                if let Some(f) = &q.var_filter {
                    s += &format!(", var_filter \"{f}\"");
                }
                s + &format!(", genes {}", match q.genes {
                    atlasflow_atlas::GeneSelection::All => "all",
                    atlasflow_atlas::GeneSelection::DatasetPresence => "dataset_presence",
                    atlasflow_atlas::GeneSelection::DatasetPresenceAll => "dataset_presence_all",
                })
            }
        }
    }
}

fn parse_census(file: &Path, base: &Path, map: &BTreeMap<String, Spanned<Value>>) -> Result<CensusSource> {
    let mut query = atlasflow_atlas::CensusQuery::default();
    let mut uri = PathBuf::new();
    let (mut obs_line, mut var_line) = (0, 0);
    for (k, v) in map {
        let (line, col) = (v.referenced.line(), v.referenced.column());
        match k.as_str() {
            "census" => {
                // A URL (s3://bucket/census) is taken as is; a path is relative to the YAML file.
                let text = as_str(file, "source.census", v)?;
                uri = if atlasflow_atlas::is_url(text) { PathBuf::from(text) } else { base.join(text) };
            }
            "organism" => query.organism = Some(as_str(file, "source.organism", v)?.to_string()),
            "measurement" => query.measurement = as_str(file, "source.measurement", v)?.to_string(),
            "obs_filter" | "var_filter" => {
                let text = match &v.value {
                    Value::Null => None,
                    _ => Some(as_str(file, &format!("source.{k}"), v)?.to_string()),
                };
                if let Some(t) = &text
                    && let Err(e) = atlasflow_atlas::ValueFilter::parse(t)
                {
                    return Err(spec_err(file, line, col, format!("source.{k}: {e}")));
                }
                if k == "obs_filter" {
                    query.obs_filter = text;
                    obs_line = line;
                } else {
                    query.var_filter = text;
                    var_line = line;
                }
            }
            "genes" => {
                let t = as_str(file, "source.genes", v)?;
                query.genes = atlasflow_atlas::GeneSelection::parse(t).ok_or_else(|| {
                    spec_err(file, line, col, format!("source.genes: unknown rule {t:?}; allowed: {}", atlasflow_atlas::GeneSelection::NAMES.join(", ")))
                })?;
            }
            "obs_columns" => match &v.value {
                Value::Null => query.obs_columns = None,
                Value::List(items) => {
                    let mut cols = Vec::new();
                    for it in items {
                        match it {
                            Value::Str(s) => cols.push(s.clone()),
                            other => {
                                return Err(spec_err(file, line, col, format!("source.obs_columns: items must be strings, found {}", other.type_name())));
                            }
                        }
                    }
                    query.obs_columns = Some(cols);
                }
                other => return Err(spec_err(file, line, col, format!("source.obs_columns must be a list of column names, found {}", other.type_name()))),
            },
            other => {
                let hint = crate::params::closest(other, &CENSUS_KEYS).map(|s| format!(" (did you mean {s}?)")).unwrap_or_default();
                return Err(spec_err(file, line, col, format!("unknown census source key {other:?}{hint} (allowed: census, {})", CENSUS_KEYS.join(", "))));
            }
        }
    }
    Ok(CensusSource { uri, query, obs_filter_line: obs_line, var_filter_line: var_line })
}

/// One step as written: its stage, optional id and input, and its parameters.
#[derive(Clone, Debug)]
pub struct StepSpec {
    /// The step id (`id:`, else the stage name, suffixed `_2`, `_3` when repeated).
    pub id: String,
    /// Whether the id was written by the user.
    pub explicit_id: bool,
    /// The stage name.
    pub stage: Located<String>,
    /// The id of the step this one reads (`input:`); None = the previous step or the source.
    pub input: Option<Located<String>>,
    /// Parameters by name.
    pub params: BTreeMap<String, Located<Value>>,
    /// Line of the step.
    pub line: u64,
}

/// What to write.
#[derive(Clone, Debug)]
pub enum OutputKind {
    /// An AnnData file with X, obs, var, obsm, varm, obsp and uns.
    H5ad,
    /// A Parquet table of obs and the embeddings (`X_umap-0`, `X_umap-1`, … as
    /// `sc.get.obs_df` names them), one row per cell.
    Parquet,
    /// An embedding scatter plot (`sc.pl.embedding`), PNG or SVG by extension.
    Plot,
}

impl OutputKind {
    /// The YAML key that names the kind.
    pub fn key(&self) -> &'static str {
        match self {
            OutputKind::H5ad => "h5ad",
            OutputKind::Parquet => "parquet",
            OutputKind::Plot => "plot",
        }
    }
}

/// One output: a file written from one step's stream.
#[derive(Clone, Debug)]
pub struct OutputSpec {
    /// The format.
    pub kind: OutputKind,
    /// The path as written (relative paths resolve against `--out` or the working dir).
    pub path: PathBuf,
    /// The id of the step whose stream is written; None = the last step.
    pub from: Option<Located<String>>,
    /// Options of the kind (a plot's basis, color, title, …), checked by the plan.
    pub options: BTreeMap<String, Located<Value>>,
    /// Line of the output.
    pub line: u64,
}

/// A parsed pipeline file.
#[derive(Clone, Debug)]
pub struct PipelineSpec {
    /// The file it came from (for errors and relative source paths).
    pub file: PathBuf,
    /// The YAML text, recorded in run.json.
    pub text: String,
    /// The pipeline's name.
    pub name: String,
    /// Seed for every randomised stage.
    pub seed: u64,
    /// The source.
    pub source: SourceSpec,
    /// Line of the source.
    pub source_line: u64,
    /// The steps in file order.
    pub steps: Vec<StepSpec>,
    /// The outputs.
    pub outputs: Vec<OutputSpec>,
}

fn spec_err(file: &Path, line: u64, column: u64, message: impl Into<String>) -> EngineError {
    EngineError::Spec { file: file.to_path_buf(), line, column, message: message.into() }
}

fn as_str<'a>(file: &Path, key: &str, v: &'a Spanned<Value>) -> Result<&'a str> {
    match &v.value {
        Value::Str(s) => Ok(s),
        other => Err(spec_err(
            file,
            v.referenced.line(),
            v.referenced.column(),
            format!("{key} must be a string, found {}", other.type_name()),
        )),
    }
}

impl PipelineSpec {
    /// Read and parse a pipeline file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| spec_err(path, 0, 0, format!("cannot read the pipeline file: {e}")))?;
        Self::parse(path, &text)
    }

    /// Parse pipeline text; `file` names it in errors and anchors relative source paths.
    pub fn parse(file: &Path, text: &str) -> Result<Self> {
        let raw: RawPipeline = serde_saphyr::from_str(text).map_err(|e| {
            let (line, col) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            let msg = e.to_string();
            let first = msg.lines().next().unwrap_or("invalid YAML");
            // The parser's own "error: line L column C: " repeats the location given before.
            let first = first.strip_prefix("error: ").unwrap_or(first);
            let first = match first.split_once(": ") {
                Some((loc, rest)) if loc.starts_with("line ") && loc.contains(" column ") => rest,
                _ => first,
            }
            .to_string();
            spec_err(file, line, col, format!("{first} (top-level keys: name, seed, source, steps, outputs)"))
        })?;
        let base = file.parent().map(Path::to_path_buf).unwrap_or_default();

        let src_line = raw.source.referenced.line();
        let source = match raw.source.value.iter().next() {
            Some((k, v)) if k == "h5ad" && raw.source.value.len() == 1 => {
                SourceSpec::H5ad(base.join(as_str(file, "source.h5ad", v)?))
            }
            _ if raw.source.value.contains_key("census") => SourceSpec::Census(parse_census(file, &base, &raw.source.value)?),
            Some((k, v)) if raw.source.value.len() == 1 => {
                return Err(spec_err(file, v.referenced.line(), 0, format!("unknown source kind {k:?}; allowed: h5ad, census")));
            }
            _ => {
                return Err(spec_err(
                    file,
                    src_line,
                    0,
                    "source must be `h5ad: file.h5ad`, or `census: store/` with its query keys (organism, obs_filter, var_filter, genes, obs_columns)",
                ));
            }
        };

        let mut steps: Vec<StepSpec> = Vec::new();
        for s in raw.steps.value {
            let line = s.referenced.line();
            let mut params = BTreeMap::new();
            let (mut stage, mut id, mut input) = (None, None, None);
            for (k, v) in s.value {
                match k.as_str() {
                    "stage" => stage = Some(Located { value: as_str(file, "stage", &v)?.to_string(), line: v.referenced.line(), column: v.referenced.column() }),
                    "id" => id = Some(Located { value: as_str(file, "id", &v)?.to_string(), line: v.referenced.line(), column: v.referenced.column() }),
                    "input" => input = Some(Located { value: as_str(file, "input", &v)?.to_string(), line: v.referenced.line(), column: v.referenced.column() }),
                    _ => {
                        params.insert(k, Located::from(v));
                    }
                }
            }
            let stage = stage.ok_or_else(|| spec_err(file, line, 0, "step has no `stage:` key"))?;
            let explicit_id = id.is_some();
            let id = match id {
                Some(id) => {
                    if steps.iter().any(|p| p.id == id.value) {
                        return Err(spec_err(file, id.line, id.column, format!("duplicate step id {:?}", id.value)));
                    }
                    id.value
                }
                None => {
                    let n = steps.iter().filter(|p| p.stage.value == stage.value).count();
                    if n == 0 { stage.value.clone() } else { format!("{}_{}", stage.value, n + 1) }
                }
            };
            steps.push(StepSpec { id, explicit_id, stage, input, params, line });
        }
        if steps.is_empty() {
            return Err(spec_err(file, raw.steps.referenced.line(), 0, "steps is empty"));
        }

        let mut outputs = Vec::new();
        for o in raw.outputs {
            let line = o.referenced.line();
            let mut kind: Option<(OutputKind, PathBuf)> = None;
            let mut from = None;
            let mut options = BTreeMap::new();
            for (k, v) in &o.value {
                let this = match k.as_str() {
                    "h5ad" => Some(OutputKind::H5ad),
                    "parquet" => Some(OutputKind::Parquet),
                    "plot" => Some(OutputKind::Plot),
                    _ => None,
                };
                if let Some(this) = this {
                    if let Some((prev, _)) = &kind {
                        return Err(spec_err(file, v.referenced.line(), v.referenced.column(), format!("an output has one format key; this one has {} and {}", prev.key(), this.key())));
                    }
                    kind = Some((this, PathBuf::from(as_str(file, k, v)?)));
                    continue;
                }
                match k.as_str() {
                    "from" => from = Some(Located { value: as_str(file, "from", v)?.to_string(), line: v.referenced.line(), column: v.referenced.column() }),
                    _ => {
                        options.insert(k.clone(), Located { value: v.value.clone(), line: v.referenced.line(), column: v.referenced.column() });
                    }
                }
            }
            let (kind, path) = kind.ok_or_else(|| spec_err(file, line, 0, "output needs a format key: `h5ad: results/out.h5ad`, `parquet: results/cells.parquet` or `plot: results/umap.png`"))?;
            if !matches!(kind, OutputKind::Plot) {
                if let Some((k, v)) = options.iter().next() {
                    return Err(spec_err(file, v.line, v.column, format!("unknown output key {k:?}; allowed with {}: from", kind.key())));
                }
            }
            outputs.push(OutputSpec { kind, path, from, options, line });
        }

        Ok(PipelineSpec {
            file: file.to_path_buf(),
            text: text.to_string(),
            name: raw.name.unwrap_or_else(|| file.file_stem().map_or("pipeline".into(), |s| s.to_string_lossy().into_owned())),
            seed: raw.seed.map_or(0, |s| s.value),
            source,
            source_line: src_line,
            steps,
            outputs,
        })
    }

    /// Apply a `--set step.param=value` override (step = id or stage name).
    pub fn set_param(&mut self, assignment: &str) -> Result<()> {
        let bad = |m: String| spec_err(Path::new("--set"), 0, 0, m);
        let (lhs, rhs) = assignment
            .split_once('=')
            .ok_or_else(|| bad(format!("{assignment:?}: expected step.param=value")))?;
        let (step, param) = lhs
            .split_once('.')
            .ok_or_else(|| bad(format!("{lhs:?}: expected step.param (a step id or stage name, a dot, a parameter)")))?;
        let matches: Vec<usize> = self
            .steps
            .iter()
            .enumerate()
            .filter(|(_, s)| s.id == step || s.stage.value == step)
            .map(|(i, _)| i)
            .collect();
        match matches.as_slice() {
            [i] => {
                let s = &mut self.steps[*i];
                if param == "stage" || param == "id" || param == "input" {
                    return Err(bad(format!("--set cannot change {param}")));
                }
                s.params.insert(param.to_string(), Located { value: Value::parse_cli(rhs), line: 0, column: 0 });
                Ok(())
            }
            [] => Err(bad(format!(
                "no step {step:?}; steps: {}",
                self.steps.iter().map(|s| s.id.as_str()).collect::<Vec<_>>().join(", ")
            ))),
            _ => Err(bad(format!("{step:?} names several steps; use a step id"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "name: t\nsource:\n  h5ad: in.h5ad\nsteps:\n  - stage: filter_cells\n    min_genes: 500\n  - stage: normalize_total\n    target_sum: 1e4\n  - stage: log1p\n    id: lg\noutputs:\n  - h5ad: out.h5ad\n";

    #[test]
    fn parses_steps_with_lines() {
        let s = PipelineSpec::parse(Path::new("p/x.yaml"), YAML).expect("parse");
        assert_eq!(s.source.path(), Path::new("p/in.h5ad"));
        assert_eq!(s.steps.len(), 3);
        assert_eq!(s.steps[0].params["min_genes"].value, Value::Int(500));
        assert_eq!(s.steps[0].params["min_genes"].line, 6);
        assert_eq!(s.steps[1].params["target_sum"].value, Value::Float(1e4));
        assert_eq!(s.steps[2].id, "lg");
        assert_eq!(s.outputs.len(), 1);
    }

    #[test]
    fn set_overrides_and_errors() {
        let mut s = PipelineSpec::parse(Path::new("x.yaml"), YAML).expect("parse");
        s.set_param("filter_cells.min_genes=200").expect("set");
        assert_eq!(s.steps[0].params["min_genes"].value, Value::Int(200));
        assert!(s.set_param("nope.x=1").is_err());
        assert!(s.set_param("filter_cells").is_err());
    }

    #[test]
    fn bad_yaml_names_line() {
        let err = PipelineSpec::parse(Path::new("x.yaml"), "source:\n  h5ad: a\nsteps:\n  - stage: [\n").unwrap_err();
        assert!(err.to_string().starts_with("x.yaml:"), "{err}");
        let err = PipelineSpec::parse(Path::new("x.yaml"), "source:\n  h5ad: a\nstep:\n  - stage: log1p\n").unwrap_err();
        assert!(err.to_string().contains("step"), "{err}");
    }
}
