//! Host weights to device buffers in the compute dtype.

use crate::device::{Device, DeviceBuffer, FloatElement};
use crate::error::{Error, Result};
use crate::weights::HostTensor;

/// `t`'s values rounded to `T` (round-to-nearest-even), uploaded.
pub(crate) fn upload<T: FloatElement>(device: &Device, t: &HostTensor) -> Result<DeviceBuffer<T>> {
    let values: Vec<T> = t.data.iter().map(|&x| T::from_f32(x)).collect();
    device.upload(&values)
}

/// A linear layer from `w [out, in]` and `b [out]`.
pub(crate) fn linear<T: FloatElement>(
    device: &Device,
    name: &str,
    w: &HostTensor,
    b: &HostTensor,
) -> Result<super::layers::Linear<T>> {
    let [out_features, in_features] = w.shape[..] else {
        return Err(Error::invalid("weights", format!("{name}: weight of shape {:?} is not [out, in]", w.shape)));
    };
    if b.shape != [out_features] {
        return Err(Error::invalid(
            "weights",
            format!("{name}: bias of shape {:?} for {out_features} outputs", b.shape),
        ));
    }
    Ok(super::layers::Linear { w: upload(device, w)?, b: upload(device, b)?, out_features, in_features })
}

/// A `[D]` vector (LayerNorm weight or bias) of exactly `dim` values.
pub(crate) fn vector<T: FloatElement>(
    device: &Device,
    name: &str,
    t: &HostTensor,
    dim: usize,
) -> Result<DeviceBuffer<T>> {
    if t.shape != [dim] {
        return Err(Error::invalid("weights", format!("{name}: shape {:?}, expected [{dim}]", t.shape)));
    }
    upload(device, t)
}
