//! Third-party decoders (laz, tiff, image, draco-core) may panic on corrupt data: an index
//! past a buffer, an overflow that debug builds check. Calls into them are contained: the
//! panic becomes an error naming the file, and the panic hook the front ends install with
//! [`quiet_contained_panics`] prints nothing for it (a panic anywhere else is a bug and is
//! reported as usual).

use std::cell::Cell;
use std::panic::{catch_unwind, UnwindSafe};

thread_local! {
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Run `f`, turning a panic inside it into `Err` with the panic's message.
pub fn contained<T>(f: impl FnOnce() -> T + UnwindSafe) -> Result<T, String> {
    DEPTH.with(|d| d.set(d.get() + 1));
    let r = catch_unwind(f);
    DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    r.map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a decoder failed".into())
    })
}

/// Whether this thread is inside [`contained`].
pub fn in_contained() -> bool {
    DEPTH.with(|d| d.get() > 0)
}

/// Wrap the current panic hook so that panics inside [`contained`] print nothing.
pub fn quiet_contained_panics() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !in_contained() {
            previous(info);
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_contained_panic_is_an_error() {
        let r: Result<u8, String> = contained(|| panic!("index out of bounds"));
        assert_eq!(r.unwrap_err(), "index out of bounds");
        assert!(!in_contained());
        assert_eq!(contained(|| 7).unwrap(), 7);
    }
}
