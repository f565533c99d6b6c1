//! A budget of bytes shared by the workers of one operation, so that what they hold together stays
//! bounded however many there are: the restore's loaders and `verify`'s threads read ahead within one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes that the holders sharing it may hold together. A holder holding nothing may always take what it
/// needs, however large (a chunk may be 1 GiB), so that no holder waits on another's: what they hold
/// together is at most the budget plus one such item each.
#[derive(Debug)]
pub struct ByteBudget {
    limit: u64,
    used: AtomicU64,
}

impl ByteBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64) -> Arc<Self> {
        Arc::new(ByteBudget { limit, used: AtomicU64::new(0) })
    }

    /// Bytes held now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// Takes `size` bytes if they fit, or, with `always`, whether they fit or not; true when taken.
    pub fn take(&self, size: u64, always: bool) -> bool {
        let fits = |used: u64| (always || used.saturating_add(size) <= self.limit).then_some(used + size);
        self.used.fetch_update(Ordering::Relaxed, Ordering::Relaxed, fits).is_ok()
    }

    /// Gives back `size` bytes taken before.
    pub fn give_back(&self, size: u64) {
        self.used.fetch_sub(size, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_what_fits_and_anything_when_told_to() {
        let b = ByteBudget::new(10);
        assert!(b.take(6, false));
        assert!(!b.take(5, false), "6 + 5 is over 10");
        assert!(b.take(4, false));
        assert!(b.take(100, true), "always");
        assert_eq!(b.used(), 110);
        b.give_back(104);
        assert_eq!(b.used(), 6);
        assert!(ByteBudget::new(u64::MAX).take(u64::MAX, false));
    }
}
