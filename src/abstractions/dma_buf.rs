// SPDX-License-Identifier: GPL-2.0

//! Owned dma-buf references, attachments and mappings.
//!
//! Each type releases what it holds when dropped, so a failed bind unwinds by
//! drop order. A finished binding keeps the raw pointers in its C structure
//! (see [`crate::binding`]) and turns them back into these types to free them.
//!
//! C header: [`include/linux/dma-buf.h`](srctree/include/linux/dma-buf.h)

use core::{marker::PhantomData, ptr::NonNull};
use kernel::{
    bindings,
    error::{from_err_ptr, to_result},
    prelude::*,
};

/// DMA direction of a binding: RX bindings are mapped from the device, TX
/// bindings to it, and each is unmapped with the direction it was mapped with.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// `DMA_FROM_DEVICE`, for bind-rx.
    FromDevice,
    /// `DMA_TO_DEVICE`, for bind-tx.
    ToDevice,
}

impl Direction {
    /// The direction of a C `enum dma_data_direction`, if devmem uses it.
    pub(crate) fn from_raw(dir: bindings::dma_data_direction) -> Option<Self> {
        match dir {
            bindings::dma_data_direction_DMA_FROM_DEVICE => Some(Self::FromDevice),
            bindings::dma_data_direction_DMA_TO_DEVICE => Some(Self::ToDevice),
            _ => None,
        }
    }

    /// The C value.
    pub(crate) fn as_raw(self) -> bindings::dma_data_direction {
        match self {
            Self::FromDevice => bindings::dma_data_direction_DMA_FROM_DEVICE,
            Self::ToDevice => bindings::dma_data_direction_DMA_TO_DEVICE,
        }
    }
}

/// A reference to a dma-buf, taken from a file descriptor.
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
    /// `ptr` must come from [`DmaBuf::into_raw`] and not have been taken back.
    pub(crate) unsafe fn from_raw(ptr: NonNull<bindings::dma_buf>) -> Self {
        // INVARIANT: the caller passes on the reference `into_raw` kept.
        Self(ptr)
    }

    /// Gives away the reference; the pointer stays valid until it is taken
    /// back with [`DmaBuf::from_raw`] and dropped.
    pub(crate) fn into_raw(self) -> NonNull<bindings::dma_buf> {
        let ptr = self.0;
        core::mem::forget(self);
        ptr
    }

    /// The size of the buffer in bytes.
    pub(crate) fn size(&self) -> usize {
        // SAFETY: the dma-buf is alive by the type invariant; `size` is
        // constant after export.
        unsafe { (*self.0.as_ptr()).size }
    }

    /// Attaches `dev` to the buffer.
    ///
    /// The attachment pins `dev`: a binding, and so its attachment, can
    /// outlive the netdev that asked for it (a netlink socket or an skb holds
    /// it), and unmapping needs the device structure.
    pub(crate) fn attach(&self, dev: NonNull<bindings::device>) -> Result<Attachment> {
        // SAFETY: the dma-buf is alive by the type invariant, and the caller's
        // `dev` is a live device (it comes from the netdev's queue).
        let att = from_err_ptr(unsafe { bindings::dma_buf_attach(self.0.as_ptr(), dev.as_ptr()) })?;
        let att = NonNull::new(att).ok_or(EINVAL)?;
        // SAFETY: `dev` is live (see above); the reference is dropped when the
        // attachment is.
        unsafe { bindings::get_device(dev.as_ptr()) };
        // INVARIANT: `dma_buf_attach` succeeded on this dma-buf, and the
        // reference on its device was just taken.
        Ok(Attachment {
            dmabuf: self.0,
            att,
        })
    }
}

impl DmaBuf {
    /// Maps the whole buffer into the kernel, for a device that moves data
    /// with the CPU; the mapping borrows the buffer. Fails as the exporter
    /// does (`EINVAL` when it has no `vmap`), and with `EOPNOTSUPP` for I/O
    /// memory, which cannot be read or written as plain memory.
    pub(crate) fn vmap(&self) -> Result<KernelMap<'_>> {
        let mut map = bindings::iosys_map::default();
        // SAFETY: the dma-buf is alive by the type invariant; `map` is a
        // valid, cleared map for the exporter to fill.
        to_result(unsafe { bindings::dma_buf_vmap_unlocked(self.0.as_ptr(), &mut map) })?;
        // INVARIANT: `map` is a mapping of this dma-buf just made, which the
        // borrow keeps alive.
        let map = KernelMap {
            dmabuf: self.0,
            map,
            _buf: PhantomData,
        };
        if map.map.is_iomem {
            return Err(crate::abstractions::net::eopnotsupp());
        }
        Ok(map)
    }
}

impl Drop for DmaBuf {
    fn drop(&mut self) {
        // SAFETY: by the type invariant this object holds a reference.
        unsafe { bindings::dma_buf_put(self.0.as_ptr()) };
    }
}

/// A device's attachment to a dma-buf.
///
/// # Invariants
///
/// `att` is an attachment of `dmabuf`, which outlives it, and holds a
/// reference on the attached device `att.dev`.
pub(crate) struct Attachment {
    dmabuf: NonNull<bindings::dma_buf>,
    att: NonNull<bindings::dma_buf_attachment>,
}

impl Attachment {
    /// Takes back an attachment given away with [`Attachment::into_raw`].
    ///
    /// # Safety
    ///
    /// `att` must come from [`Attachment::into_raw`] on an attachment of
    /// `dmabuf`, not taken back yet, and `dmabuf` must outlive the result.
    pub(crate) unsafe fn from_raw(
        dmabuf: NonNull<bindings::dma_buf>,
        att: NonNull<bindings::dma_buf_attachment>,
    ) -> Self {
        // INVARIANT: guaranteed by the caller.
        Self { dmabuf, att }
    }

    /// Gives the attachment away, to be taken back with [`Attachment::from_raw`].
    pub(crate) fn into_raw(self) -> NonNull<bindings::dma_buf_attachment> {
        let att = self.att;
        core::mem::forget(self);
        att
    }

    /// Maps the attachment for DMA in direction `dir`.
    pub(crate) fn map(&self, dir: Direction) -> Result<Mapping> {
        // SAFETY: the attachment is alive by the type invariant.
        let sgt = from_err_ptr(unsafe {
            bindings::dma_buf_map_attachment_unlocked(self.att.as_ptr(), dir.as_raw())
        })?;
        let sgt = NonNull::new(sgt).ok_or(EINVAL)?;
        // INVARIANT: `sgt` is the mapping just made of this attachment.
        Ok(Mapping {
            att: self.att,
            sgt,
            dir,
        })
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        // SAFETY: the attachment is alive by the type invariant; `dev` is set
        // at attach time and never changes.
        let dev = unsafe { (*self.att.as_ptr()).dev };
        // SAFETY: by the type invariant `att` is an attachment of `dmabuf`.
        unsafe { bindings::dma_buf_detach(self.dmabuf.as_ptr(), self.att.as_ptr()) };
        // SAFETY: by the type invariant this object holds a reference on
        // `dev`, which is no longer used now the attachment is gone.
        unsafe { bindings::put_device(dev) };
    }
}

/// A DMA mapping of an attachment, unmapped with the direction it was mapped
/// with.
///
/// # Invariants
///
/// `sgt` is a mapping of `att` made in direction `dir`; `att` outlives it.
pub(crate) struct Mapping {
    att: NonNull<bindings::dma_buf_attachment>,
    sgt: NonNull<bindings::sg_table>,
    dir: Direction,
}

impl Mapping {
    /// Takes back a mapping given away with [`Mapping::into_raw`].
    ///
    /// # Safety
    ///
    /// `sgt` must come from [`Mapping::into_raw`] on a mapping of `att` made in
    /// direction `dir`, not taken back yet, and `att` must outlive the result.
    pub(crate) unsafe fn from_raw(
        att: NonNull<bindings::dma_buf_attachment>,
        sgt: NonNull<bindings::sg_table>,
        dir: Direction,
    ) -> Self {
        // INVARIANT: guaranteed by the caller.
        Self { att, sgt, dir }
    }

    /// Gives the mapping away, to be taken back with [`Mapping::from_raw`].
    pub(crate) fn into_raw(self) -> NonNull<bindings::sg_table> {
        let sgt = self.sgt;
        core::mem::forget(self);
        sgt
    }

    /// The DMA segments of the mapping, as `(dma address, length)`.
    pub(crate) fn segments(&self) -> impl Iterator<Item = (bindings::dma_addr_t, usize)> + '_ {
        // SAFETY: the table is a live DMA mapping by the type invariant, and
        // it stays mapped while `self` is borrowed.
        let table = unsafe { kernel::scatterlist::SGTable::from_raw(self.sgt.as_ptr()) };
        table
            .iter()
            .map(|sg| (sg.dma_address(), sg.dma_len() as usize))
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: by the type invariant `sgt` maps `att` in direction `dir`.
        unsafe {
            bindings::dma_buf_unmap_attachment_unlocked(
                self.att.as_ptr(),
                self.sgt.as_ptr(),
                self.dir.as_raw(),
            )
        };
    }
}

/// A kernel mapping of a whole dma-buf (`dma_buf_vmap`), borrowing it.
///
/// # Invariants
///
/// `map` is a live `dma_buf_vmap` mapping of `dmabuf`, which outlives it.
pub(crate) struct KernelMap<'a> {
    dmabuf: NonNull<bindings::dma_buf>,
    map: bindings::iosys_map,
    _buf: PhantomData<&'a DmaBuf>,
}

impl<'a> KernelMap<'a> {
    /// Takes back a mapping given away with [`KernelMap::into_raw`].
    ///
    /// # Safety
    ///
    /// `map` must come from [`KernelMap::into_raw`] on a mapping of `dmabuf`,
    /// not taken back yet, and `dmabuf` must outlive the result.
    pub(crate) unsafe fn from_raw(
        dmabuf: NonNull<bindings::dma_buf>,
        map: bindings::iosys_map,
    ) -> Self {
        // INVARIANT: guaranteed by the caller.
        Self {
            dmabuf,
            map,
            _buf: PhantomData,
        }
    }

    /// Gives the mapping away, to be taken back with [`KernelMap::from_raw`]
    /// (which needs the dma-buf it maps).
    pub(crate) fn into_raw(self) -> bindings::iosys_map {
        let map = self.map;
        core::mem::forget(self);
        map
    }
}

impl Drop for KernelMap<'_> {
    fn drop(&mut self) {
        // SAFETY: by the type invariant `map` maps `dmabuf`, which is alive.
        unsafe { bindings::dma_buf_vunmap_unlocked(self.dmabuf.as_ptr(), &mut self.map) };
    }
}
