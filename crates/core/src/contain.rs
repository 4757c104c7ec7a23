//! Turning a panic inside a third-party decoder into an error, silently.
//!
//! Some libraries atlasflow calls on untrusted bytes panic on malformed input instead of
//! returning an error: arrow-ipc, for one, panics on an impossible type in the Arrow schema
//! that Parquet files embed in their footer (`ARROW:schema`). A user must get a clear error
//! naming the file, not a panic message. [`contain`] runs such a call under
//! `catch_unwind` and gives the panic's message back as an `Err`; while it runs, the
//! process's panic hook stays quiet for that thread (other threads still report theirs).
//!
//! Hand-written because no crate offers a per-thread quiet scope over the global hook.

use std::any::Any;
use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    /// True while this thread runs inside [`contain`].
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Install, once per process, a hook that stays silent for threads inside [`contain`] and
/// otherwise calls the hook that was there before.
fn install_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info);
            }
        }));
    });
}

/// The text of a panic payload (what `panic!` was given), for reports of caught panics.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// Run `f`; if it panics, return the panic's message instead, without printing it.
///
/// Only for calls into code that owns no state atlasflow reads afterwards (a decoder
/// given bytes), so nothing is left half-updated by the unwinding.
pub fn contain<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install_hook();
    let was = QUIET.with(|q| q.replace(true));
    let out = panic::catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(was));
    out.map_err(|p| panic_message(p.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::contain;

    #[test]
    fn a_panic_becomes_its_message() {
        let r: Result<u8, String> = contain(|| panic!("Int type with bit width {} not supported", 67));
        assert_eq!(r.unwrap_err(), "Int type with bit width 67 not supported");
    }

    #[test]
    fn a_value_passes_through_and_nesting_restores_the_scope() {
        assert_eq!(contain(|| contain(|| 7).unwrap() + 1), Ok(8));
        let r = contain(|| {
            let inner: Result<(), String> = contain(|| panic!("inner"));
            assert!(inner.is_err());
            panic!("outer")
        });
        assert_eq!(r.unwrap_err(), "outer");
    }
}
