//! The Census navigation type on the Census-shaped fixture: every member the engine's
//! census source reads, organism names as `cellxgene_census` spells them, and errors that
//! name the missing member or the wrong SOMA kind.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use atlasflow_soma::census::RNA;
use atlasflow_soma::{Census, Coords, LocalStorage, SomaError, SomaKind, Storage};
use common::fixtures;

fn census() -> Census {
    Census::open_local(fixtures().join("census")).unwrap()
}

#[test]
fn navigates_the_census_members() {
    let c = census();
    assert_eq!(
        c.metadata()
            .get("census_schema_version")
            .and_then(|v| v.as_str()),
        Some("2.1.0")
    );
    let datasets = c.datasets().unwrap().read(None).unwrap();
    assert_eq!(datasets.num_rows(), 3);
    assert!(datasets.column_by_name("dataset_title").is_some());
    assert_eq!(c.summary().unwrap().read(None).unwrap().num_rows(), 2);
    assert_eq!(
        c.summary_cell_counts().unwrap().kind(),
        &SomaKind::DataFrame
    );
    assert_eq!(c.organisms().unwrap(), vec!["homo_sapiens".to_string()]);
    let exp = c.experiment("Homo sapiens").unwrap();
    assert_eq!(exp.name(), "homo_sapiens");
    assert_eq!(exp.group().kind(), &SomaKind::Experiment);
    let obs = exp.obs().unwrap();
    let some = obs
        .read_coords(
            Some(&["soma_joinid", "cell_type"]),
            &Coords::points([5, 1, 700]),
        )
        .unwrap();
    let ids = some.column(0).as_primitive::<Int64Type>().values().to_vec();
    assert_eq!(ids, vec![1, 5, 700]);
    let var = exp.var(RNA).unwrap();
    let v = var
        .read_coords(Some(&["feature_length"]), &Coords::all())
        .unwrap();
    assert_eq!(v.num_rows(), 200);
    let x = exp.x(RNA, "raw").unwrap();
    assert_eq!(x.shape(), vec![Some(800), Some(200)]);
    let rows = x.x_reader().unwrap().read_rows(&[0, 1, 2]).unwrap();
    assert_eq!(rows.n_rows(), 3);
    let fdpm = exp.feature_dataset_presence_matrix(RNA).unwrap();
    let present = fdpm
        .read_coords(Some(&["soma_dim_1"]), &Coords::points([1]))
        .unwrap();
    assert!(present.num_rows() > 0);
    // The same through an explicit storage and path.
    let storage: Arc<dyn Storage> = Arc::new(LocalStorage::new(fixtures()));
    let c2 = Census::open(storage, "census").unwrap();
    assert!(c2.experiment("homo_sapiens").is_ok());
}

#[test]
fn errors_name_the_missing_member_or_the_wrong_kind() {
    let c = census();
    let err = c.experiment("Mus musculus").unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, SomaError::NotFound { .. }), "{msg}");
    assert!(
        msg.contains("mus_musculus") && msg.contains("homo_sapiens") && msg.contains("census_data"),
        "{msg}"
    );
    let exp = c.experiment("Homo sapiens").unwrap();
    let msg = exp.x(RNA, "counts").unwrap_err().to_string();
    assert!(msg.contains("\"counts\"") && msg.contains("raw"), "{msg}");
    let msg = exp.var("ATAC").unwrap_err().to_string();
    assert!(msg.contains("ATAC") && msg.contains("ms"), "{msg}");
    // Not a Census root: an Experiment where a Collection is expected.
    let err = Census::open_local(fixtures().join("census/census_data/homo_sapiens")).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, SomaError::WrongKind { .. }), "{msg}");
    assert!(
        msg.contains("SOMAExperiment") && msg.contains("SOMACollection"),
        "{msg}"
    );
    // A collection without the Census members.
    let msg = Census::open_local(fixtures().join("tiles"))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("census_info"), "{msg}");
    // An array where a group is expected.
    let msg = Census::open_local(fixtures().join("census/census_data/homo_sapiens/obs"))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("not a group"), "{msg}");
}
