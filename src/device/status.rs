//! Deferred invalid-value checks: status words in device memory that kernels flag with
//! the first row whose input has no defined result (a NaN latent, an index out of range),
//! read back only at the next synchronizing call, the way CUDA reports asynchronous
//! errors. A chain of ops therefore never waits for the device in between.
//!
//! Each op takes one word from its device's pool (reused across calls: after the first
//! calls there is no allocation and no host→device copy), passes it to its kernel, and
//! hands it back with what to report. [`super::Device::synchronize`] and every download
//! read all pending words, reset them to "no row" on the device and return the first
//! flagged check, in the order the ops were issued, as [`Error::InvalidValue`].

use super::buffer::Storage;
use crate::error::Error;

/// The value of a status word that no kernel has flagged ("no row").
pub(crate) const NO_ROW: u32 = u32::MAX;

/// What a flagged status word means: the op, its argument and why the row is invalid.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PendingCheck {
    pub(crate) op: &'static str,
    pub(crate) arg: &'static str,
    pub(crate) reason: &'static str,
}

impl PendingCheck {
    pub(crate) fn error(&self, row: u32) -> Error {
        Error::InvalidValue { op: self.op, arg: self.arg, row: row as usize, reason: self.reason }
    }
}

/// A device's status words: free ones (reset to [`NO_ROW`]) and ones awaiting a read.
#[derive(Default)]
pub(crate) struct StatusWords {
    pub(crate) free: Vec<Storage<u32>>,
    pub(crate) pending: Vec<(Storage<u32>, PendingCheck)>,
}
