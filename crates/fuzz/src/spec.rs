//! The pipeline-spec target: everything `atlasflow validate` and the start of `run` do with a
//! YAML file before any cell is read.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use arrow::array::{ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use atlasflow_atlas::ValueFilter;
use atlasflow_core::GeneTable;
use atlasflow_engine::spec::SourceSpec;
use atlasflow_engine::{PipelineSpec, Plan};

/// Lines of the input starting with this are also applied as `--set` overrides, so the
/// fuzzer reaches `set_param` with text it chooses (the YAML parser sees them as comments).
const SET_PREFIX: &str = "#set ";

/// Parse `data` (as UTF-8, invalid sequences replaced) as a pipeline file; when it parses,
/// apply its `#set step.param=value` lines as `--set` overrides, check its value filters
/// against an obs and a var schema of the shape a store has, build the plan, describe it, and
/// build every step's operators over a small gene table. Errors are fine; a panic is a bug.
pub fn spec_yaml(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(mut spec) = PipelineSpec::parse(Path::new("fuzz/fuzz.yaml"), &text) else {
        return;
    };
    for line in text.lines() {
        if let Some(assignment) = line.strip_prefix(SET_PREFIX) {
            let _ = spec.set_param(assignment);
        }
    }
    let _ = spec.source.describe();
    if let SourceSpec::Census(c) = &spec.source {
        check_filter(c.query.obs_filter.as_deref(), obs_schema());
        check_filter(c.query.var_filter.as_deref(), var_schema());
    }
    let Ok(plan) = Plan::new(spec) else {
        return;
    };
    let _ = plan.describe();
    let genes = gene_table();
    for step in &plan.steps {
        let _ = (step.configured.instantiate)(genes);
    }
}

/// Parse a filter again (the spec parser only checks that it parses), check it against
/// `schema` and turn it into a DataFusion expression, as opening a store does.
fn check_filter(text: Option<&str>, schema: &Schema) {
    let Some(Ok(f)) = text.map(ValueFilter::parse) else {
        return;
    };
    let _ = f.columns();
    if f.check(schema).is_ok() {
        let _ = f.to_expr();
    }
}

/// The obs columns of a store made from Census-like h5ad files plus the dataset-table
/// columns a filter may name.
fn obs_schema() -> &'static Schema {
    static S: OnceLock<Schema> = OnceLock::new();
    S.get_or_init(|| {
        let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        Schema::new(vec![
            Field::new("soma_joinid", DataType::Int64, false),
            Field::new("dataset_id", DataType::Utf8, false),
            Field::new("obs_id", DataType::Utf8, false),
            Field::new("nnz", DataType::Int64, false),
            Field::new("raw_sum", DataType::Float64, false),
            Field::new("n_measured_vars", DataType::Int64, false),
            Field::new("cell_type", dict.clone(), true),
            Field::new("tissue", dict, true),
            Field::new("donor_id", DataType::Utf8, true),
            Field::new("is_primary_data", DataType::Boolean, true),
            Field::new("score", DataType::Float32, true),
            Field::new("n_genes", DataType::Int32, true),
            Field::new("dataset_title", DataType::Utf8, false),
            Field::new("collection_name", DataType::Utf8, false),
            Field::new("dataset_total_cell_count", DataType::Int64, false),
        ])
    })
}

/// The var table's columns.
fn var_schema() -> &'static Schema {
    static S: OnceLock<Schema> = OnceLock::new();
    S.get_or_init(|| {
        Schema::new(vec![
            Field::new("soma_joinid", DataType::Int64, false),
            Field::new("feature_id", DataType::Utf8, false),
            Field::new("feature_name", DataType::Utf8, false),
            Field::new("feature_length", DataType::Int64, false),
            Field::new("nnz", DataType::Int64, false),
            Field::new("n_measured_obs", DataType::Int64, false),
        ])
    })
}

/// Forty genes with the var columns stages look for (feature_length, an `mt` flag,
/// highly_variable), for building operators without a source.
fn gene_table() -> &'static GeneTable {
    static G: OnceLock<GeneTable> = OnceLock::new();
    G.get_or_init(|| {
        let n = 40;
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values((0..n).map(|j| format!("gene{j}")))),
            Arc::new(Int64Array::from_iter_values((0..n).map(|j| 500 + 10 * j))),
            Arc::new(BooleanArray::from_iter((0..n).map(|j| Some(j % 10 == 0)))),
            Arc::new(BooleanArray::from_iter((0..n).map(|j| Some(j % 3 == 0)))),
        ];
        let fields = vec![
            Field::new(atlasflow_core::genes::GENE_ID, DataType::Utf8, false),
            Field::new("feature_length", DataType::Int64, false),
            Field::new("mt", DataType::Boolean, false),
            Field::new("highly_variable", DataType::Boolean, false),
        ];
        RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)
            .ok()
            .and_then(|rb| GeneTable::try_new(rb).ok())
            // The columns above always assemble; the fallback only keeps this panic-free.
            .unwrap_or_else(|| GeneTable::from_names((0..n).map(|j| format!("gene{j}")).collect()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gene_table_has_its_columns() {
        let g = gene_table();
        assert_eq!(g.n_genes(), 40);
        assert!(g.column("feature_length").is_some() && g.column("mt").is_some());
    }

    #[test]
    fn tutorial_pipeline_plans() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../pipelines/census-smartseq2-liver.yaml")).expect("read");
        let spec = PipelineSpec::parse(Path::new("fuzz/fuzz.yaml"), &text).expect("parse");
        assert!(Plan::new(spec).is_ok());
        spec_yaml(text.as_bytes());
    }
}
