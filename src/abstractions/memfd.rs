// SPDX-License-Identifier: GPL-2.0

//! Memory user space shares with the kernel through a memfd: a range of it
//! pinned and mapped into the kernel for as long as the kernel uses it.
//!
//! Shaped as `rust/kernel/mm/memfd.rs` would be. The refill ring of a
//! devmem binding lives in such memory (Documentation/refill-ring.md): the
//! user names it by file descriptor and offset, as it names the memory of a
//! udmabuf, and the kernel pins it with `memfd_pin_folios()`, as udmabuf
//! does, so the pages stay put whatever the process does with its mappings,
//! fork and exit included. The pin needs no mm to be dropped, so the owner
//! can be freed from a work item after the process is gone.
//!
//! User space reads and writes the same memory at any time: the kernel
//! touches it only through [`Atomic`] loads and stores, at offsets the
//! owner checked, never through references to plain data. User space can
//! also punch a hole in the range after the pin (`F_SEAL_SHRINK` does not
//! forbid it): the pinned pages then leave the file, and what the kernel
//! writes is no longer what user space reads. That breaks only the user's
//! own ring; the pinned pages stay the kernel's until the owner drops them.

use core::ptr::NonNull;
use kernel::{
    alloc::KVVec,
    bindings,
    error::from_err_ptr,
    fs::file::LocalFile,
    prelude::*,
    sync::atomic::{Atomic, AtomicType},
    transmute::FromBytes,
};

/// Seals a memfd must carry to be pinned: it cannot shrink under the pin.
const SEALS_WANTED: u32 = bindings::F_SEAL_SHRINK;
/// Seals it must not carry: user space writes the shared memory.
const SEALS_DENIED: u32 = bindings::F_SEAL_WRITE | bindings::F_SEAL_FUTURE_WRITE;

/// The largest range pinned, in pages: a refill ring of 32768 entries of 8
/// bytes and two cache lines of indices fits in 65 pages of 4 KiB.
pub(crate) const MAX_PAGES: usize = 128;

/// `len` bytes of a memfd, from a page-aligned offset, pinned and mapped
/// into the kernel contiguously.
///
/// # Invariants
///
/// `folios` holds the folios `memfd_pin_folios()` pinned for the range,
/// each pinned once by it; `vaddr` is a `vmap()` of the range's pages,
/// covering at least `len` bytes. Both are released by `Drop` only, which
/// may sleep (`vunmap()`): an owner is dropped in process context (a
/// binding's is, by its free work).
pub(crate) struct PinnedMemfd {
    folios: KVVec<*mut bindings::folio>,
    vaddr: NonNull<u8>,
    len: usize,
    /// The memfd's inode, referenced (`ihold()`), so that [`Self::is_of`]
    /// compares with an inode that cannot be freed and its address reused.
    inode: NonNull<bindings::inode>,
}

// SAFETY: the pin, the mapping and the inode reference belong to no
// thread: any thread may use the mapping through `Atomic` accesses, compare
// the inode and drop all three.
unsafe impl Send for PinnedMemfd {}
// SAFETY: shared access reads and writes the mapping only through `Atomic`
// accesses, which may run concurrently from any thread.
unsafe impl Sync for PinnedMemfd {}

/// Whether `file` was opened for writing (`FMODE_WRITE`: an access mode of
/// 3, which `O_ACCMODE` alone would take for writable, gives none).
fn is_writable(file: &LocalFile) -> bool {
    // SAFETY: `file` is alive for the borrow; `f_mode` is set at open and
    // the write bit never changes afterwards.
    let mode = unsafe { (*file.as_ptr()).f_mode };
    mode & bindings::FMODE_WRITE != 0
}

impl PinnedMemfd {
    /// Pins `len` bytes of the memfd `file` from `offset`, and maps them
    /// into the kernel. The pin holds the pages, not the file: the caller
    /// may drop its reference on `file` after the call.
    ///
    /// Refused with `EINVAL` for a file that is not a memfd, one that can shrink
    /// (`F_SEAL_SHRINK` missing) or that user space cannot write
    /// (`F_SEAL_WRITE`, `F_SEAL_FUTURE_WRITE`), an offset that is not page
    /// aligned, an empty range, one of more than [`MAX_PAGES`] or one past
    /// the end of the file; with `EACCES` for a memfd not open for writing
    /// (the kernel writes the ring's head into these pages, which only a
    /// caller that may write them may ask for). `EAGAIN` if a page of the
    /// range is not uptodate
    /// once pinned (which the inode lock held across the read and the pin
    /// should make impossible).
    pub(crate) fn pin(file: &LocalFile, offset: u64, len: usize) -> Result<Self> {
        let page = bindings::PAGE_SIZE;
        let pages = len.div_ceil(page);
        if pages == 0 || pages > MAX_PAGES || offset % page as u64 != 0 {
            return Err(EINVAL);
        }
        // `pages` is at most `MAX_PAGES`: neither the product nor its
        // conversion can fail.
        let span = u64::try_from(pages * page).map_err(|_| EINVAL)?;
        let last = offset
            .checked_add(span - 1)
            .and_then(|l| i64::try_from(l).ok())
            .ok_or(EINVAL)?;
        let start = i64::try_from(offset).map_err(|_| EINVAL)?;

        // Held across the seal check, the read and the pin, as udmabuf does:
        // `memfd_add_seals()` takes it for writing, so no write seal can be
        // added between the check and the pin (its wait for pins would find
        // none), and `fallocate()` takes it too, so no page of the range is
        // replaced between the read and the pin.
        let inode_lock = InodeReadLock::new(file);
        let inode = NonNull::new(inode_lock.0).ok_or(EINVAL)?;

        // SAFETY: the caller's reference keeps `file` alive for the call.
        let seals = unsafe { bindings::memfd_fcntl(file.as_ptr(), bindings::F_GET_SEALS, 0) };
        // Negative for a file that is not a memfd.
        let seals = u32::try_from(seals).map_err(|_| EINVAL)?;
        if seals & SEALS_WANTED != SEALS_WANTED || seals & SEALS_DENIED != 0 {
            return Err(EINVAL);
        }
        if !is_writable(file) {
            return Err(EACCES);
        }

        // A shmem folio that `fallocate()` made and nobody wrote or read
        // yet is not uptodate: shmem reads it as a hole and clears it the
        // first time user space maps it, so what the kernel wrote through
        // the pin would be lost, or stale bytes seen. Read each page first,
        // as a fault does: that clears such a folio and marks it uptodate,
        // and allocates a missing one. (A hugetlb memfd's folios are zeroed
        // and uptodate from the start.)
        // SAFETY: the caller's reference keeps `file` alive for the call,
        // and a live file's `f_mapping` is set and lives as long as it.
        let mapping = unsafe { (*file.as_ptr()).f_mapping };
        // SAFETY: `mapping` is live (above); the call only reads it.
        if unsafe { bindings::shmem_mapping(mapping) } {
            let first_index = offset / page as u64;
            for i in 0..pages as u64 {
                let index = first_index + i;
                // SAFETY: `mapping` is a live shmem mapping (checked above);
                // an index past the end of the file fails with `EINVAL`.
                let folio = from_err_ptr(unsafe {
                    bindings::shmem_read_folio(mapping, index as kernel::ffi::c_ulong)
                })?;
                // SAFETY: `shmem_read_folio()` returned a reference, ours
                // to drop; the pin below takes its own.
                unsafe { bindings::folio_put(folio) };
            }
        }

        let mut folios = KVVec::with_capacity(pages, GFP_KERNEL)?;
        let mut first: kernel::ffi::c_ulong = 0;
        // SAFETY: `file` is alive for the call; `folios` has room for
        // `pages` entries, the most `memfd_pin_folios()` writes with that
        // `max_folios`, and `first` is valid for writes.
        let n = unsafe {
            bindings::memfd_pin_folios(
                file.as_ptr(),
                start,
                last,
                folios.as_mut_ptr(),
                pages as u32,
                &mut first,
            )
        };
        let n = usize::try_from(n).map_err(|_| Error::from_errno(n as i32))?;
        // SAFETY: `memfd_pin_folios()` initialised the first `n` entries,
        // at most `pages`, the capacity.
        unsafe { folios.inc_len(n.min(pages)) };
        // INVARIANT: from here on every folio in `folios` is pinned once;
        // if the mapping fails, `unpin` drops the pins.
        let mut pinned = Pinned(folios);
        // The lock keeps the range as it was read; should a folio not be
        // uptodate all the same, refuse it rather than pin a page shmem
        // would clear.
        for &f in pinned.0.iter() {
            // SAFETY: `f` is pinned (`Pinned`'s invariant), so it is live.
            if !unsafe { bindings::folio_test_uptodate(f) } {
                return Err(EAGAIN);
            }
        }
        let vaddr = pinned.map(first as usize, pages)?;
        // The pins move to `Self`; the emptied `pinned` drops none.
        let folios = core::mem::take(&mut pinned.0);
        // SAFETY: the inode of a file the caller keeps alive, locked by
        // `inode_lock`: live; the reference is dropped by `Drop`.
        unsafe { bindings::ihold(inode.as_ptr()) };
        // INVARIANT: `folios` pinned, `vaddr` maps `pages` pages (checked
        // non-null in `map`), which cover `len`; `inode` referenced.
        Ok(Self {
            folios,
            vaddr,
            len,
            inode,
        })
    }

    /// The bytes pinned.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether `file` is the memfd these pages were pinned from, and open
    /// for writing.
    pub(crate) fn is_of(&self, file: &LocalFile) -> bool {
        // SAFETY: `file` is alive for the borrow, and its inode with it.
        let inode = unsafe { (*file.as_ptr()).f_inode };
        inode == self.inode.as_ptr() && is_writable(file)
    }

    /// The value of type `T` at byte `offset` of the pinned range, for
    /// atomic access; `None` if it is not entirely inside the range or not
    /// aligned for `T`.
    pub(crate) fn atomic<T: AtomicType + FromBytes>(&self, offset: usize) -> Option<&Atomic<T>> {
        let size = core::mem::size_of::<T>();
        let end = offset.checked_add(size)?;
        if end > self.len || offset % core::mem::align_of::<T>() != 0 {
            return None;
        }
        // The mapping starts on a page boundary, so `offset`'s alignment is
        // the address's.
        let ptr = self.vaddr.as_ptr().wrapping_add(offset).cast::<T>();
        // SAFETY: `ptr` is inside the mapping (checked above), which lives
        // as long as `self` (type invariant), and is aligned for `T`. Every
        // bit pattern is a valid `T` (`FromBytes`: integers only, no `bool`
        // or pointer), so whatever user space writes there is a value. The
        // kernel accesses this memory only through `Atomic`, which compiles
        // to the C atomic and `READ_ONCE`/`WRITE_ONCE` accesses; user
        // space's come from another address space, as a device's would.
        Some(unsafe { Atomic::from_ptr(ptr) })
    }
}

/// A file's inode, locked for reading (`inode_lock_shared()`) until
/// dropped.
///
/// # Invariants
///
/// `self.0` is the inode of a file the borrow `'a` keeps alive, locked for
/// reading by this guard.
struct InodeReadLock<'a>(
    *mut bindings::inode,
    core::marker::PhantomData<&'a LocalFile>,
);

impl<'a> InodeReadLock<'a> {
    fn new(file: &'a LocalFile) -> Self {
        // SAFETY: `file` is alive for `'a` (the borrow), and so is its
        // inode, which a file keeps from open to release.
        let inode = unsafe { (*file.as_ptr()).f_inode };
        // SAFETY: as above; a sleeping lock, and `pin` runs in process
        // context (it allocates with `GFP_KERNEL`).
        unsafe { bindings::inode_lock_shared(inode) };
        // INVARIANT: locked just now.
        Self(inode, core::marker::PhantomData)
    }
}

impl Drop for InodeReadLock<'_> {
    fn drop(&mut self) {
        // SAFETY: locked for reading by `new` (type invariant), and the
        // borrow keeps the inode alive.
        unsafe { bindings::inode_unlock_shared(self.0) };
    }
}

impl Drop for PinnedMemfd {
    fn drop(&mut self) {
        // SAFETY: `vaddr` is the `vmap()` this owner made (type invariant);
        // no reference into it outlives `self`.
        unsafe { bindings::vunmap(self.vaddr.as_ptr().cast()) };
        unpin(&mut self.folios);
        // SAFETY: the reference `pin` took (type invariant), given up once.
        unsafe { bindings::iput(self.inode.as_ptr()) };
    }
}

/// Folios pinned by `memfd_pin_folios()`, not yet mapped: unpinned if the
/// mapping fails.
///
/// # Invariants
///
/// Every entry is a folio pinned once by `memfd_pin_folios()`, whose pin
/// this owner holds.
struct Pinned(KVVec<*mut bindings::folio>);

impl Pinned {
    /// Maps `pages` pages, starting `first` bytes into the first folio,
    /// into one range of kernel addresses.
    fn map(&self, first: usize, pages: usize) -> Result<NonNull<u8>> {
        let mut list: KVVec<*mut bindings::page> = KVVec::with_capacity(pages, GFP_KERNEL)?;
        let mut folio = 0;
        // Bytes into the current folio.
        let mut at = first;
        for _ in 0..pages {
            // The folio holding byte `at`, from the current one on.
            let f = loop {
                let f = *self.0.get(folio).ok_or(EINVAL)?;
                // SAFETY: `f` is pinned (type invariant), so it stays a
                // live folio while this owner holds it.
                let size = unsafe { bindings::folio_size(f) };
                if at < size {
                    break f;
                }
                at -= size;
                folio += 1;
            };
            // SAFETY: as above; `at` is below the folio's size, so the page
            // is one of the folio's.
            let page = unsafe { bindings::folio_page(f, at / bindings::PAGE_SIZE) };
            list.push(page, GFP_KERNEL)?;
            at += bindings::PAGE_SIZE;
        }
        // SAFETY: `list` holds `pages` pages of pinned folios, which stay
        // pinned as long as the mapping (the owner unmaps before it
        // unpins); `pages` is at most `MAX_PAGES`.
        let vaddr = unsafe {
            bindings::vmap(
                list.as_mut_ptr(),
                pages as u32,
                // A flag: widening a `u32` constant.
                bindings::VM_MAP as kernel::ffi::c_ulong,
                bindings::page_kernel(),
            )
        };
        NonNull::new(vaddr.cast()).ok_or(ENOMEM)
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        unpin(&mut self.0);
    }
}

/// Drops the pins of `folios`, each taken once by `memfd_pin_folios()`.
fn unpin(folios: &mut KVVec<*mut bindings::folio>) {
    // SAFETY: every entry is a folio pinned once by `memfd_pin_folios()`,
    // whose pin the caller gives up here (the vector is cleared after).
    unsafe { bindings::unpin_folios(folios.as_mut_ptr(), folios.len() as kernel::ffi::c_ulong) };
    folios.clear();
}

/// Memfds made in the kernel as user space makes them, for the KUnit cases
/// of this module and of the refill ring.
#[cfg(CONFIG_NET_DEVMEM_KUNIT_TEST)]
pub(crate) mod test_util {
    use super::*;
    use kernel::{error::to_result, fs::file::File, sync::aref::ARef};

    /// A memfd of `pages` pages sealed against shrinking, as a ring's user
    /// makes one.
    pub(crate) fn test_memfd(pages: usize) -> Result<ARef<File>> {
        test_memfd_sealed(pages, bindings::F_SEAL_SHRINK)
    }

    /// A memfd of `pages` pages with `seals` added, as user space makes
    /// one with `memfd_create(MFD_ALLOW_SEALING)`, `ftruncate()` and
    /// `F_ADD_SEALS`.
    pub(crate) fn test_memfd_sealed(pages: usize, seals: u32) -> Result<ARef<File>> {
        // SAFETY: a name valid for the call; `memfd_alloc_file()` copies it.
        let f = from_err_ptr(unsafe {
            bindings::memfd_alloc_file(c"devmem-test".as_char_ptr(), bindings::MFD_ALLOW_SEALING)
        })?;
        let f = NonNull::new(f).ok_or(ENOMEM)?;
        // SAFETY: `memfd_alloc_file()` returned a new reference, which the
        // `ARef` takes over.
        let file: ARef<File> = unsafe { ARef::from_raw(f.cast()) };
        let len = i64::try_from(pages * bindings::PAGE_SIZE).map_err(|_| EINVAL)?;
        // Sized as `ftruncate()` sizes it, with no folio yet.
        // SAFETY: the file is alive (`file`), and its path with it.
        let r = unsafe {
            bindings::vfs_truncate(&raw const (*file.as_ptr()).__bindgen_anon_1.f_path, len)
        };
        to_result(r)?;
        if seals != 0 {
            // SAFETY: the file is alive (`file`).
            let r = unsafe { bindings::memfd_fcntl(file.as_ptr(), bindings::F_ADD_SEALS, seals) };
            to_result(i32::try_from(r).map_err(|_| EINVAL)?)?;
        }
        Ok(file)
    }
}

#[cfg(CONFIG_NET_DEVMEM_KUNIT_TEST)]
#[kernel::macros::kunit_tests(devmem_memfd)]
mod tests {
    use super::test_util::test_memfd_sealed;
    use super::*;
    use kernel::{error::to_result, sync::atomic::Relaxed};

    const PAGE: usize = bindings::PAGE_SIZE;

    #[test]
    fn two_pins_see_the_same_pages() -> Result {
        let file = test_memfd_sealed(3, bindings::F_SEAL_SHRINK)?;
        let a = PinnedMemfd::pin(&file, PAGE as u64, 2 * PAGE)?;
        let b = PinnedMemfd::pin(&file, 0, 3 * PAGE)?;
        assert_eq!(a.len(), 2 * PAGE);
        a.atomic::<u32>(0)
            .ok_or(EINVAL)?
            .store(0xdead_beef, Relaxed);
        a.atomic::<u64>(2 * PAGE - 8)
            .ok_or(EINVAL)?
            .store(u64::MAX - 1, Relaxed);
        // `b` starts a page earlier in the same memfd.
        assert_eq!(
            b.atomic::<u32>(PAGE).ok_or(EINVAL)?.load(Relaxed),
            0xdead_beef
        );
        assert_eq!(
            b.atomic::<u64>(3 * PAGE - 8).ok_or(EINVAL)?.load(Relaxed),
            u64::MAX - 1
        );
        assert_eq!(b.atomic::<u32>(0).ok_or(EINVAL)?.load(Relaxed), 0);
        Ok(())
    }

    /// What the kernel writes through a pin of pages `fallocate()` made is
    /// what user space then reads: shmem must not take them for holes.
    #[test]
    fn fallocated_pages_keep_what_the_kernel_wrote() -> Result {
        let file = test_memfd_sealed(2, bindings::F_SEAL_SHRINK)?;
        let len = i64::try_from(2 * PAGE).map_err(|_| EINVAL)?;
        // SAFETY: the file is alive (`file`).
        to_result(unsafe { bindings::vfs_fallocate(file.as_ptr(), 0, 0, len) })?;
        let p = PinnedMemfd::pin(&file, 0, 2 * PAGE)?;
        p.atomic::<u32>(PAGE + 4)
            .ok_or(EINVAL)?
            .store(0x5eed_f00d, Relaxed);
        let mut buf = [0u8; 4];
        let mut pos: bindings::loff_t = (PAGE + 4) as bindings::loff_t;
        // SAFETY: the file is alive; `buf` and `pos` are valid for the
        // call, which writes at most `buf.len()` bytes.
        let n = unsafe {
            bindings::kernel_read(file.as_ptr(), buf.as_mut_ptr().cast(), buf.len(), &mut pos)
        };
        assert_eq!(n, 4);
        assert_eq!(u32::from_ne_bytes(buf), 0x5eed_f00d);
        // And the read did not clear the page under the pin.
        assert_eq!(
            p.atomic::<u32>(PAGE + 4).ok_or(EINVAL)?.load(Relaxed),
            0x5eed_f00d
        );
        Ok(())
    }

    #[test]
    fn accesses_stay_inside_and_aligned() -> Result {
        let file = test_memfd_sealed(1, bindings::F_SEAL_SHRINK)?;
        let p = PinnedMemfd::pin(&file, 0, 100)?;
        assert!(p.atomic::<u32>(96).is_some());
        assert!(p.atomic::<u32>(97).is_none());
        assert!(p.atomic::<u32>(98).is_none());
        assert!(p.atomic::<u64>(96).is_none());
        assert!(p.atomic::<u64>(usize::MAX - 3).is_none());
        Ok(())
    }

    #[test]
    fn refused() -> Result {
        let unsealed = test_memfd_sealed(2, 0)?;
        assert_eq!(PinnedMemfd::pin(&unsealed, 0, PAGE).err(), Some(EINVAL));
        let sealed = test_memfd_sealed(2, bindings::F_SEAL_SHRINK | bindings::F_SEAL_WRITE)?;
        assert_eq!(PinnedMemfd::pin(&sealed, 0, PAGE).err(), Some(EINVAL));
        let file = test_memfd_sealed(2, bindings::F_SEAL_SHRINK)?;
        assert_eq!(PinnedMemfd::pin(&file, 1, PAGE).err(), Some(EINVAL));
        assert_eq!(PinnedMemfd::pin(&file, 0, 0).err(), Some(EINVAL));
        assert_eq!(
            PinnedMemfd::pin(&file, 0, (MAX_PAGES + 1) * PAGE).err(),
            Some(EINVAL)
        );
        assert_eq!(
            PinnedMemfd::pin(&file, !(PAGE as u64 - 1), PAGE).err(),
            Some(EINVAL)
        );
        // Past the end of the file.
        assert_eq!(
            PinnedMemfd::pin(&file, PAGE as u64, 2 * PAGE).err(),
            Some(EINVAL)
        );
        Ok(())
    }
}
