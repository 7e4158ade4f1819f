//! Typed views of part of a [`DeviceBuffer`]: what every kernel takes wherever it takes a
//! buffer, so that one allocation can hold several operands (a fused QKV projection's Q,
//! K and V, the chunks of an adaLN modulation, one stage of a residual quantizer) and ops
//! read and write them in place, without copies.
//!
//! A view is `len` elements starting `offset` elements into its buffer; both are checked
//! when the view is made. `&DeviceBuffer<T>` converts into a [`BufferView`] of the whole
//! buffer and `&mut DeviceBuffer<T>` into a [`BufferViewMut`], so every op accepts a
//! buffer where it accepts a view.
//!
//! Alignment: a buffer's storage starts 16-byte aligned, a view starts wherever its offset
//! puts it. Kernels that stage through 16-byte vectors fall back to element copies for a
//! view that is not 16-byte aligned; an op whose only path needs the alignment returns
//! [`crate::Error::InvalidArgument`] naming the view instead (see each op's documentation).

use super::{Device, DeviceBuffer, Element};
use crate::error::{Error, Result};
use std::ops::{Bound, Range, RangeBounds};

/// A read-only view of `len` elements of a [`DeviceBuffer`].
#[derive(Debug)]
pub struct BufferView<'a, T: Element> {
    buffer: &'a DeviceBuffer<T>,
    offset: usize,
    len: usize,
}

impl<T: Element> Clone for BufferView<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T: Element> Copy for BufferView<'_, T> {}

/// A writable view of `len` elements of a [`DeviceBuffer`].
#[derive(Debug)]
pub struct BufferViewMut<'a, T: Element> {
    buffer: &'a mut DeviceBuffer<T>,
    offset: usize,
    len: usize,
}

/// `range` of a buffer of `len` elements as a checked `start..end`.
fn checked_range(range: impl RangeBounds<usize>, len: usize) -> Result<Range<usize>> {
    let start = match range.start_bound() {
        Bound::Included(&s) => Some(s),
        Bound::Excluded(&s) => s.checked_add(1),
        Bound::Unbounded => Some(0),
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e.checked_add(1),
        Bound::Excluded(&e) => Some(e),
        Bound::Unbounded => Some(len),
    };
    match (start, end) {
        (Some(s), Some(e)) if s <= e && e <= len => Ok(s..e),
        _ => Err(Error::invalid(
            "range",
            format!("{:?}..{:?} is not a range within {len} elements", range.start_bound(), range.end_bound()),
        )),
    }
}

impl<T: Element> DeviceBuffer<T> {
    /// A view of the elements `range` (e.g. `d..2 * d`). Fails with
    /// [`Error::InvalidArgument`] naming `range` when it does not lie within the buffer.
    pub fn view(&self, range: impl RangeBounds<usize>) -> Result<BufferView<'_, T>> {
        let r = checked_range(range, self.len())?;
        Ok(BufferView { buffer: self, offset: r.start, len: r.len() })
    }

    /// A writable view of the elements `range`; errors as [`DeviceBuffer::view`].
    pub fn view_mut(&mut self, range: impl RangeBounds<usize>) -> Result<BufferViewMut<'_, T>> {
        let r = checked_range(range, self.len())?;
        Ok(BufferViewMut { buffer: self, offset: r.start, len: r.len() })
    }

    /// The whole buffer as a view.
    pub fn as_view(&self) -> BufferView<'_, T> {
        BufferView { buffer: self, offset: 0, len: self.len() }
    }

    /// The whole buffer as a writable view.
    pub fn as_view_mut(&mut self) -> BufferViewMut<'_, T> {
        let len = self.len();
        BufferViewMut { buffer: self, offset: 0, len }
    }
}

impl<'a, T: Element> From<&'a DeviceBuffer<T>> for BufferView<'a, T> {
    fn from(buffer: &'a DeviceBuffer<T>) -> Self {
        buffer.as_view()
    }
}

impl<'a, T: Element> From<&'a mut DeviceBuffer<T>> for BufferView<'a, T> {
    fn from(buffer: &'a mut DeviceBuffer<T>) -> Self {
        buffer.as_view()
    }
}

impl<'a, T: Element> From<&'a mut DeviceBuffer<T>> for BufferViewMut<'a, T> {
    fn from(buffer: &'a mut DeviceBuffer<T>) -> Self {
        buffer.as_view_mut()
    }
}

impl<'a, 'b, T: Element> From<&'b BufferView<'a, T>> for BufferView<'a, T> {
    fn from(view: &'b BufferView<'a, T>) -> Self {
        *view
    }
}

impl<'a, 'b: 'a, T: Element> From<&'a mut BufferViewMut<'b, T>> for BufferViewMut<'a, T> {
    fn from(view: &'a mut BufferViewMut<'b, T>) -> Self {
        view.reborrow()
    }
}

impl<'a, 'b: 'a, T: Element> From<&'a BufferViewMut<'b, T>> for BufferView<'a, T> {
    fn from(view: &'a BufferViewMut<'b, T>) -> Self {
        view.as_view()
    }
}

/// The accessors both view types share (length, offset, alignment, download).
macro_rules! view_accessors {
    ($view:ident) => {
        impl<T: Element> $view<'_, T> {
            /// Number of elements.
            pub fn len(&self) -> usize {
                self.len
            }

            /// True when the view holds no element.
            pub fn is_empty(&self) -> bool {
                self.len == 0
            }

            /// Offset of the first element in the underlying buffer, in elements.
            pub fn offset(&self) -> usize {
                self.offset
            }

            /// Copies the viewed elements to the host; synchronizes like [`DeviceBuffer::download`].
            pub fn download(&self) -> Result<Vec<T>> {
                self.buffer.download_range(self.offset, self.len)
            }

            /// True when the first element is `align`-byte aligned in device memory.
            pub fn is_aligned(&self, align: usize) -> bool {
                (self.offset * std::mem::size_of::<T>()) % align == 0
            }
        }
    };
}
view_accessors!(BufferView);
view_accessors!(BufferViewMut);

impl<'a, T: Element> BufferView<'a, T> {
    /// The device that owns the underlying buffer.
    pub fn device(&self) -> &'a Device {
        self.buffer.device()
    }

    /// A view of `range` of this view (indices relative to it); errors as
    /// [`DeviceBuffer::view`].
    pub fn view(&self, range: impl RangeBounds<usize>) -> Result<BufferView<'a, T>> {
        let r = checked_range(range, self.len)?;
        Ok(BufferView { buffer: self.buffer, offset: self.offset + r.start, len: r.len() })
    }

    pub(crate) fn buffer(&self) -> &'a DeviceBuffer<T> {
        self.buffer
    }

    /// Host backends: the viewed elements.
    pub(crate) fn host(&self) -> Option<&'a [T]> {
        self.buffer.host().map(|h| &h[self.offset..self.offset + self.len])
    }

    /// Cuda backend: the viewed elements as a cudarc view.
    pub(crate) fn cuda_view(&self) -> Option<cudarc::driver::CudaView<'a, T>> {
        self.buffer.cuda_slice().map(|s| s.slice(self.offset..self.offset + self.len))
    }
}

impl<'a, T: Element> BufferViewMut<'a, T> {
    /// The device that owns the underlying buffer.
    pub fn device(&self) -> &Device {
        self.buffer.device()
    }

    /// A writable view of `range` of this view (indices relative to it), for a shorter
    /// borrow; errors as [`DeviceBuffer::view`].
    pub fn view_mut(&mut self, range: impl RangeBounds<usize>) -> Result<BufferViewMut<'_, T>> {
        let r = checked_range(range, self.len)?;
        Ok(BufferViewMut { buffer: &mut *self.buffer, offset: self.offset + r.start, len: r.len() })
    }

    /// This view for a shorter borrow (to pass it to an op and keep it).
    pub fn reborrow(&mut self) -> BufferViewMut<'_, T> {
        BufferViewMut { buffer: &mut *self.buffer, offset: self.offset, len: self.len }
    }

    /// This view, read-only.
    pub fn as_view(&self) -> BufferView<'_, T> {
        BufferView { buffer: &*self.buffer, offset: self.offset, len: self.len }
    }

    pub(crate) fn buffer(&self) -> &DeviceBuffer<T> {
        self.buffer
    }

    /// Host backends: the viewed elements, writable.
    pub(crate) fn host_mut(&mut self) -> Option<&mut [T]> {
        let (o, l) = (self.offset, self.len);
        self.buffer.host_mut().map(|h| &mut h[o..o + l])
    }

    /// Cuda backend: the viewed elements as a writable cudarc view.
    pub(crate) fn cuda_view_mut(&mut self) -> Option<cudarc::driver::CudaViewMut<'_, T>> {
        let (o, l) = (self.offset, self.len);
        self.buffer.cuda_slice_mut().map(|s| s.slice_mut(o..o + l))
    }
}

impl<'a, T: Element> BufferView<'a, T> {
    /// This view as a view of `U` elements when `U` is `T` (a generic op's dispatch to the
    /// kernel of one concrete type), else None.
    pub(crate) fn downcast<U: Element>(self) -> Option<BufferView<'a, U>> {
        let buffer = (self.buffer as &dyn std::any::Any).downcast_ref::<DeviceBuffer<U>>()?;
        Some(BufferView { buffer, offset: self.offset, len: self.len })
    }
}

impl<'a, T: Element> BufferViewMut<'a, T> {
    /// This view as a view of `U` elements when `U` is `T`, else None (as
    /// [`BufferView::downcast`]).
    pub(crate) fn downcast<U: Element>(self) -> Option<BufferViewMut<'a, U>> {
        let (offset, len) = (self.offset, self.len);
        let buffer = (self.buffer as &mut dyn std::any::Any).downcast_mut::<DeviceBuffer<U>>()?;
        Some(BufferViewMut { buffer, offset, len })
    }
}
