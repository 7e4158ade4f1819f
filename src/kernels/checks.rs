//! Argument checks and the status word shared by every kernel family's wrapper.

use crate::device::{BufferView, BufferViewMut, DeviceBuffer, Element, PendingCheck};
use crate::error::{Error, Result};
use crate::Device;

/// A one-word flag in device memory: kernels `atomicMin` it with the first row whose
/// input has no defined result (NaN latent, out-of-range index, ...). Starts at
/// `u32::MAX` ("no row flagged"). Taken from the device's pool and handed back with
/// [`RowStatus::defer`]: the device reads it at its next synchronizing call.
pub(crate) struct RowStatus {
    word: DeviceBuffer<u32>,
}

impl RowStatus {
    pub(crate) fn new(device: &Device) -> Result<Self> {
        Ok(RowStatus { word: device.status_word()? })
    }

    /// The buffer to pass as the kernel's `status` argument.
    pub(crate) fn buffer(&mut self) -> &mut DeviceBuffer<u32> {
        &mut self.word
    }

    /// Reports a flagged row as `InvalidValue { op, arg, row, reason }` at the device's
    /// next synchronizing call; never waits.
    pub(crate) fn defer(self, op: &'static str, arg: &'static str, reason: &'static str) {
        let device = self.word.device().clone();
        device.defer_check(self.word, PendingCheck { op, arg, reason });
    }
}

/// `LengthMismatch` naming `arg` unless `actual == expected`.
pub(crate) fn check_len(arg: &'static str, actual: usize, expected: usize) -> Result<()> {
    if actual == expected {
        Ok(())
    } else {
        Err(Error::LengthMismatch { arg, expected, actual })
    }
}

/// `n` as the kernels' u32 row count; `u32::MAX` itself is reserved for "no row" in
/// status words and index outputs.
pub(crate) fn row_count(n: usize, arg: &'static str) -> Result<u32> {
    u32::try_from(n)
        .ok()
        .filter(|&n| n < u32::MAX)
        .ok_or_else(|| Error::invalid(arg, format!("{n} rows; at most {} per call", u32::MAX - 1)))
}

/// The host memory of a view on the Cpu backend.
pub(crate) fn host<'a, T: Element>(v: &BufferView<'a, T>, arg: &'static str) -> Result<&'a [T]> {
    v.host().ok_or_else(|| crate::kernels::launch::host_storage_missing(arg))
}

/// The host memory of a writable view on the Cpu backend.
pub(crate) fn host_mut<'a, T: Element>(v: &'a mut BufferViewMut<'_, T>, arg: &'static str) -> Result<&'a mut [T]> {
    v.host_mut().ok_or_else(|| crate::kernels::launch::host_storage_missing(arg))
}
