//! Saving and restoring fit states, so an interrupted run resumes after its last completed
//! pass. The encoding is postcard's (serde): compact, and exact for floats, so a resumed run
//! gives the same bits as an uninterrupted one.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Result, StageError};

/// Encode a state (None if serde refuses it, which a plain state never does).
pub fn save<T: Serialize>(state: &T) -> Option<Vec<u8>> {
    postcard::to_stdvec(state).ok()
}

/// Decode a state saved by [`save`] into `into`, after checking that its shape (the lengths
/// `shape` reports: genes, cells…) equals that of the fresh state it replaces. A checkpoint
/// of another gene table or a damaged file is refused rather than folded in.
pub fn restore<T: DeserializeOwned>(stage: &str, bytes: &[u8], into: &mut T, shape: impl Fn(&T) -> Vec<usize>) -> Result<()> {
    let decoded: T = postcard::from_bytes(bytes)
        .map_err(|e| StageError::data(stage, format!("the checkpointed fit state does not decode: {e}")))?;
    let (want, got) = (shape(into), shape(&decoded));
    if want != got {
        return Err(StageError::data(stage, format!("the checkpointed fit state has shape {got:?}, this run's has {want:?}")));
    }
    *into = decoded;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_is_exact_and_shapes_are_checked() {
        let v: Vec<f64> = vec![0.1, f64::MIN_POSITIVE, -3.5e300, 1.0 / 3.0];
        let bytes = save(&v).unwrap();
        let mut back = vec![0.0; 4];
        restore("t", &bytes, &mut back, |x: &Vec<f64>| vec![x.len()]).unwrap();
        assert_eq!(v.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), back.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
        let mut wrong = vec![0.0; 3];
        let e = restore("t", &bytes, &mut wrong, |x: &Vec<f64>| vec![x.len()]).unwrap_err().to_string();
        assert!(e.contains("shape [4]"), "{e}");
        let e = restore("t", &bytes[..5], &mut back, |x: &Vec<f64>| vec![x.len()]).unwrap_err().to_string();
        assert!(e.contains("does not decode"), "{e}");
    }
}
