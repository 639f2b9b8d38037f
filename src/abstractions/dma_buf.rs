// SPDX-License-Identifier: GPL-2.0

//! dma-buf importer side: a reference to a buffer, a device's attachment to
//! it, and the attachment's DMA mapping.
//!
//! Each owner type releases what it holds when dropped, and each borrows
//! what it was made from: a [`Mapping`] borrows its [`Attachment`], which
//! borrows its [`DmaBuf`], so the compiler rejects unmapping after detaching
//! or detaching after the last put. An attachment also holds a reference on
//! the attached device ([`ARef<Device>`]): a binding can outlive the netdev
//! that asked for it, and unmapping and detaching need the device structure.
//!
//! A user that keeps the pieces in a C structure (devmem's binding does:
//! `devmem.h` readers see its fields) gives them away with `into_raw` and
//! takes them back, in the same borrowing order, with the `unsafe`
//! `from_raw` constructors.
//!
//! Shaped as `rust/kernel/dma_buf.rs` would be.
//!
//! C header: [`include/linux/dma-buf.h`](srctree/include/linux/dma-buf.h)

use core::{mem::ManuallyDrop, ptr::NonNull};
use kernel::{
    bindings, device::Device, dma::DataDirection, error::from_err_ptr, prelude::*, sync::aref::ARef,
};

/// The C pointer of a device.
///
/// `Device::as_raw` is private to the kernel crate; `Device` is a
/// `#[repr(transparent)]` wrapper of `Opaque<struct device>`, so its address
/// is the C structure's. In `rust/kernel/` this is `dev.as_raw()`.
fn device_ptr(dev: &Device) -> *mut bindings::device {
    core::ptr::from_ref(dev).cast_mut().cast()
}

/// A C `enum dma_data_direction` as the kernel crate's type, for the values
/// a dma-buf mapping can have.
pub(crate) fn direction_from_raw(dir: bindings::dma_data_direction) -> Option<DataDirection> {
    [
        DataDirection::ToDevice,
        DataDirection::FromDevice,
        DataDirection::Bidirectional,
    ]
    .into_iter()
    .find(|d| bindings::dma_data_direction::from(*d) == dir)
}

/// A reference to a dma-buf.
///
/// # Invariants
///
/// `self.0` points to a dma-buf on which this object holds a reference.
pub(crate) struct DmaBuf(NonNull<bindings::dma_buf>);

impl DmaBuf {
    /// Takes a reference to the dma-buf behind `fd`.
    ///
    /// Fails with `EBADF` for a closed descriptor and `EINVAL` for a file that
    /// is not a dma-buf, as `dma_buf_get` does.
    pub(crate) fn get(fd: i32) -> Result<Self> {
        // SAFETY: `dma_buf_get` accepts any descriptor value.
        let ptr = from_err_ptr(unsafe { bindings::dma_buf_get(fd) })?;
        // INVARIANT: `dma_buf_get` returned a referenced dma-buf.
        Ok(Self(NonNull::new(ptr).ok_or(EINVAL)?))
    }

    /// Takes back a reference given away with [`DmaBuf::into_raw`].
    ///
    /// # Safety
    ///
    /// `ptr` must come from [`DmaBuf::into_raw`] and not have been taken back
    /// since.
    pub(crate) unsafe fn from_raw(ptr: NonNull<bindings::dma_buf>) -> Self {
        // INVARIANT: the caller passes on the reference `into_raw` kept.
        Self(ptr)
    }

    /// Gives away the reference; the pointer stays valid until it is taken
    /// back with [`DmaBuf::from_raw`] and dropped.
    pub(crate) fn into_raw(self) -> NonNull<bindings::dma_buf> {
        ManuallyDrop::new(self).0
    }

    /// Borrows a reference that someone else (a C structure) keeps: the
    /// value is never dropped, so the reference stays theirs.
    ///
    /// # Safety
    ///
    /// A reference on `ptr` must be held elsewhere for as long as the
    /// returned value is used.
    pub(crate) unsafe fn borrow_raw(ptr: NonNull<bindings::dma_buf>) -> ManuallyDrop<Self> {
        // INVARIANT: a reference is held for as long as the value is used
        // (caller); `ManuallyDrop` never puts it.
        ManuallyDrop::new(Self(ptr))
    }

    /// The C pointer, valid while `self` is.
    pub(crate) fn as_raw(&self) -> *mut bindings::dma_buf {
        self.0.as_ptr()
    }

    /// The size of the buffer in bytes.
    pub(crate) fn size(&self) -> usize {
        // SAFETY: the dma-buf is alive by the type invariant; `size` is
        // set by the exporter before export and never changes.
        unsafe { (*self.0.as_ptr()).size }
    }

    /// Attaches `dev` to the buffer; the attachment keeps a reference on
    /// `dev` until it is dropped.
    pub(crate) fn attach(&self, dev: &Device) -> Result<Attachment<'_>> {
        // SAFETY: the dma-buf is alive by the type invariant, and `&Device`
        // proves a reference on the device is held for the call.
        let att =
            from_err_ptr(unsafe { bindings::dma_buf_attach(self.as_raw(), device_ptr(dev)) })?;
        let att = NonNull::new(att).ok_or(EINVAL)?;
        // INVARIANT: `dma_buf_attach` attached `dev` to this dma-buf, whose
        // borrow outlives the result; the `ARef` is the reference on `dev`.
        Ok(Attachment {
            dmabuf: self,
            att,
            dev: Some(dev.into()),
        })
    }
}

impl Drop for DmaBuf {
    fn drop(&mut self) {
        // SAFETY: by the type invariant this object holds a reference.
        unsafe { bindings::dma_buf_put(self.0.as_ptr()) };
    }
}

/// A device's attachment to a dma-buf, borrowing the dma-buf.
///
/// # Invariants
///
/// `att` is a live attachment of `dmabuf` made by `dma_buf_attach`, owned
/// by this object, and `dev` is a reference on the attached device (an
/// `Option` only so that [`Attachment::into_raw`] can move it out: it is
/// `Some` for as long as the attachment is).
pub(crate) struct Attachment<'a> {
    dmabuf: &'a DmaBuf,
    att: NonNull<bindings::dma_buf_attachment>,
    dev: Option<ARef<Device>>,
}

impl<'a> Attachment<'a> {
    /// Takes back an attachment given away with [`Attachment::into_raw`].
    ///
    /// # Safety
    ///
    /// `att` must come from [`Attachment::into_raw`] on an attachment of
    /// `dmabuf` and not have been taken back since.
    pub(crate) unsafe fn from_raw(
        dmabuf: &'a DmaBuf,
        att: NonNull<bindings::dma_buf_attachment>,
    ) -> Self {
        // SAFETY: the attachment is alive (caller) and its `dev` was set by
        // `dma_buf_attach`; `into_raw` left the reference on it behind, which
        // this `ARef` takes back.
        let dev = unsafe { ARef::from_raw(NonNull::new_unchecked((*att.as_ptr()).dev).cast()) };
        // INVARIANT: per the caller, with the device reference just taken back.
        Self {
            dmabuf,
            att,
            dev: Some(dev),
        }
    }

    /// Gives the attachment, and its reference on the device, away, to be
    /// taken back with [`Attachment::from_raw`].
    pub(crate) fn into_raw(mut self) -> NonNull<bindings::dma_buf_attachment> {
        if let Some(dev) = self.dev.take() {
            let _ = ARef::into_raw(dev);
        }
        ManuallyDrop::new(self).att
    }

    /// Maps the attachment for DMA in direction `dir`.
    pub(crate) fn map(&self, dir: DataDirection) -> Result<Mapping<'_>> {
        // SAFETY: the attachment is alive by the type invariant.
        let sgt = from_err_ptr(unsafe {
            bindings::dma_buf_map_attachment_unlocked(self.att.as_ptr(), dir.into())
        })?;
        let sgt = NonNull::new(sgt).ok_or(EINVAL)?;
        // INVARIANT: `sgt` is the mapping just made of this attachment, in
        // `dir`, and the borrow keeps the attachment alive.
        Ok(Mapping {
            att: self,
            sgt,
            dir,
        })
    }
}

impl Drop for Attachment<'_> {
    fn drop(&mut self) {
        // SAFETY: by the type invariant `att` is a live attachment of
        // `dmabuf`, owned here; `dev` is dropped after it, so the device
        // outlives the detach.
        unsafe { bindings::dma_buf_detach(self.dmabuf.as_raw(), self.att.as_ptr()) };
    }
}

/// A DMA mapping of an attachment, borrowing the attachment; unmapped with
/// the direction it was mapped with.
///
/// # Invariants
///
/// `sgt` is a live mapping of `att`, made in direction `dir` by
/// `dma_buf_map_attachment_unlocked` and owned by this object.
pub(crate) struct Mapping<'a> {
    att: &'a Attachment<'a>,
    sgt: NonNull<bindings::sg_table>,
    dir: DataDirection,
}

impl<'a> Mapping<'a> {
    /// Takes back a mapping given away with [`Mapping::into_raw`].
    ///
    /// # Safety
    ///
    /// `sgt` must come from [`Mapping::into_raw`] on a mapping of `att` made
    /// in direction `dir`, and not have been taken back since.
    pub(crate) unsafe fn from_raw(
        att: &'a Attachment<'a>,
        sgt: NonNull<bindings::sg_table>,
        dir: DataDirection,
    ) -> Self {
        // INVARIANT: per the caller.
        Self { att, sgt, dir }
    }

    /// Gives the mapping away, to be taken back with [`Mapping::from_raw`].
    pub(crate) fn into_raw(self) -> NonNull<bindings::sg_table> {
        ManuallyDrop::new(self).sgt
    }
}

impl Drop for Mapping<'_> {
    fn drop(&mut self) {
        // SAFETY: by the type invariant `sgt` is a live mapping of `att`, made
        // in `dir` and owned here; the borrow keeps `att` attached.
        unsafe {
            bindings::dma_buf_unmap_attachment_unlocked(
                self.att.att.as_ptr(),
                self.sgt.as_ptr(),
                self.dir.into(),
            )
        };
    }
}
