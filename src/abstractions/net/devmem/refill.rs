// SPDX-License-Identifier: GPL-2.0

//! The refill ring of a binding (Documentation/refill-ring.md): where user
//! space gives received frags back without a syscall, and the count of the
//! references it holds.
//!
//! Everything here reads memory user space writes at any time, so every
//! value is read once, bounded, and trusted for nothing but the slot it
//! names: a bad entry is counted and skipped, and never reaches a `net_iov`
//! the user does not hold.

use super::Binding;
use crate::abstractions::bug::warn_on_once;
use crate::abstractions::memfd::PinnedMemfd;
use crate::abstractions::net::page_pool::{MemoryProvider, PagePoolRefill, PoolRefs, Unrefed};
use crate::abstractions::sync::{new_spinlock_bh, SpinLockBh};
use core::ptr::NonNull;
use kernel::{
    alloc::KVVec,
    bindings,
    fs::file::LocalFile,
    prelude::*,
    sync::atomic::{Acquire, Atomic, Full, Relaxed, Release},
};

/// The cache line the ring's indices are spaced by.
const CACHE_LINE: u32 = bindings::L1_CACHE_BYTES;

/// A binding's refill ring with the user references it gives back: what a
/// binding bound with one carries (`Binding::refill`).
#[pin_data]
pub(crate) struct Refill {
    /// Drained by any of the binding's page pools, from NAPI or from the
    /// driver's fill in process context.
    #[pin]
    ring: SpinLockBh<RefillRing>,
    refs: UserRefs,
    layout: Layout,
    entries: u32,
}

impl Refill {
    /// Pins the ring of `entries` entries at `offset` in the memfd `file`
    /// and makes a user reference count for each of `niovs` `net_iov`s.
    pub(crate) fn new(
        file: &LocalFile,
        offset: u64,
        entries: u32,
        niovs: usize,
    ) -> Result<Pin<KBox<Self>>> {
        let (_, bytes) = Layout::new(CACHE_LINE, entries)?;
        let mem = PinnedMemfd::pin(file, offset, bytes)?;
        let ring = RefillRing::new(mem, entries, CACHE_LINE)?;
        let layout = ring.layout();
        let refs = UserRefs::new(niovs)?;
        KBox::pin_init(
            try_pin_init!(Self {
                ring <- new_spinlock_bh!(ring, c"binding->refill"),
                refs,
                layout,
                entries,
            }? Error),
            GFP_KERNEL,
        )
    }

    /// Where the ring's parts are, for bind-rx's reply.
    pub(crate) fn layout(&self) -> Layout {
        self.layout
    }

    /// The ring's size in entries.
    pub(crate) fn entries(&self) -> u32 {
        self.entries
    }

    /// Entries read from the ring, and of those, rejected.
    pub(crate) fn counters(&self) -> (u64, u64) {
        self.ring.lock().counters()
    }

    /// References user space holds and has not given back.
    pub(crate) fn user_refs(&self) -> u64 {
        self.refs.outstanding()
    }

    /// Whether `file` is the memfd the ring is in.
    pub(crate) fn is_ring_file(&self, file: &LocalFile) -> bool {
        self.ring.lock().mem.is_of(file)
    }

    /// Counts a reference user space takes on `net_iov` `slot`; see
    /// [`UserRefs::give`].
    ///
    /// # Safety
    ///
    /// As for [`UserRefs::give`].
    pub(crate) unsafe fn give(&self, slot: usize) -> bool {
        // SAFETY: `slot` is a `net_iov` of this ring's binding lent to a
        // page pool, and the caller took the page_pool reference the new
        // count stands for (this function's own precondition, the same).
        unsafe { self.refs.give(slot) }
    }

    /// Takes back a reference [`Refill::give`] counted on `net_iov` `slot`,
    /// whose frag never reached user space; `false` if a drain or the
    /// scrub took it first. The caller then drops the page_pool reference
    /// it stood for, which is its own again.
    pub(crate) fn put(&self, slot: usize) -> bool {
        self.refs.put(slot)
    }

    /// Whether this is `binding`'s ring: its counts index that binding's
    /// `net_iov`s and no other's, so the drains, the flush and the scrub
    /// check it before they drop a page_pool reference on one.
    fn is_of(&self, binding: &Binding) -> bool {
        binding.refill().is_some_and(|r| core::ptr::eq(r, self))
    }

    /// Gives back the `net_iov` an entry names, if user space holds a
    /// reference on it: the reference goes, and with it the page_pool
    /// reference it stood for; a `net_iov` whose last reference that was
    /// goes to `back`.
    fn give_back(&self, binding: &Binding, entry: u64, back: &mut impl FnMut(Unrefed<'_>)) -> bool {
        let n = self.refs.len();
        let Ok(slot) = usize::try_from(entry >> binding.niov_size().shift()) else {
            return false;
        };
        if slot >= n {
            return false;
        }
        // The bound was checked with a branch the CPU may mispredict: clamp
        // the index too, so that no speculative access reaches past the
        // counts.
        // SAFETY: a pure computation on two integers.
        let slot = unsafe { bindings::array_index_nospec(slot, n) };
        // The `net_iov` first, so that a count is only taken back when its
        // page_pool reference can be dropped. There are as many counts as
        // slots (`Refill::new`), so neither lookup fails.
        let Some(niov) = binding
            .niov_at_slot(slot)
            .and_then(|v| NonNull::new(v.as_raw()))
        else {
            warn_on_once!(true);
            return false;
        };
        if !self.refs.put(slot) {
            return false;
        }
        // SAFETY: the count just taken back stood for a page_pool reference
        // its giver took (`UserRefs`'s invariant), now ours; a referenced
        // frag is lent to a pool, and the binding, borrowed here, keeps its
        // `net_iov`s alive.
        if let Some(refs) = unsafe { PoolRefs::from_raw(niov, 1) } {
            if let Some(last) = refs.unref() {
                back(last);
            }
        }
        true
    }

    /// For a refill of `pool`, a page pool of `binding`: consumes the
    /// entries user space produced, up to the room in the pool's cache,
    /// putting each `net_iov` whose last reference goes into that cache if
    /// it is `pool`'s, and back to its own pool otherwise.
    ///
    /// Reached through [`Binding::drain_refill`], which passes the binding
    /// the ring is of; any other binding is refused (`is_of`).
    pub(super) fn drain_into<T: MemoryProvider>(
        &self,
        binding: &Binding,
        pool: &PagePoolRefill<'_, T>,
    ) -> usize {
        if warn_on_once!(!self.is_of(binding)) {
            return 0;
        }
        let max = pool.cache_room();
        self.ring.lock().drain(max, |entry| {
            self.give_back(binding, entry, &mut |last| {
                if let Err(last) = pool.place(last) {
                    last.recycle();
                }
            })
        })
    }

    /// Consumes the entries user space produced, up to one ring's worth,
    /// returning each `net_iov` whose last reference goes to its pool
    /// (dmabuf-flush). The ring's lock, which keeps bottom halves off, is
    /// held for [`FLUSH_BATCH`] entries at a time, not for a whole ring of
    /// up to [`MAX_ENTRIES`]; and a user that keeps producing does not keep
    /// the flush going. Reached
    /// only through [`Binding::flush_refill`], as `drain_into`.
    pub(super) fn flush(&self, binding: &Binding) -> usize {
        if warn_on_once!(!self.is_of(binding)) {
            return 0;
        }
        let mut accepted = 0;
        let mut consumed = 0;
        while consumed < u64::from(self.entries) {
            let mut ring = self.ring.lock();
            let (before, _) = ring.counters();
            accepted += ring.drain(FLUSH_BATCH, |entry| {
                self.give_back(binding, entry, &mut |last| last.recycle())
            });
            let (after, _) = ring.counters();
            drop(ring);
            if after == before {
                break;
            }
            consumed += after - before;
        }
        accepted
    }

    /// Closes every user reference of `binding` (its last queue is gone):
    /// the page_pool references they stood for are dropped, and each
    /// `net_iov` whose last they were goes back to its pool. From here on
    /// TCP gives the binding's frags tokens. Returns the references closed.
    /// Reached only through the binding's own teardown, as `drain_into`.
    pub(super) fn scrub(&self, binding: &Binding) -> u64 {
        if warn_on_once!(!self.is_of(binding)) {
            return 0;
        }
        self.refs.scrub(|slot, n| {
            let Some(niov) = binding
                .niov_at_slot(slot)
                .and_then(|v| NonNull::new(v.as_raw()))
            else {
                warn_on_once!(true);
                return;
            };
            // SAFETY: the `n` counts just closed stood for `n` page_pool
            // references their givers took (`UserRefs`'s invariant), now
            // ours; referenced frags are lent to a pool, and the binding
            // keeps its `net_iov`s alive.
            if let Some(refs) = unsafe { PoolRefs::from_raw(niov, n) } {
                if let Some(last) = refs.unref() {
                    last.recycle();
                }
            }
        })
    }
}

/// The most entries a ring may have (and a power of two): with two cache
/// lines of indices, the ring fits in [`crate::abstractions::memfd::MAX_PAGES`]
/// pages of 4 KiB.
pub(crate) const MAX_ENTRIES: u32 = 32768;

/// Entries dmabuf-flush consumes per hold of the ring's lock: a page
/// pool's refill batch, less than a drain from NAPI may take at once (the
/// room in a pool's cache, up to `PP_ALLOC_CACHE_SIZE`).
const FLUSH_BATCH: usize = bindings::PP_ALLOC_CACHE_REFILL as usize;

/// Set in a `net_iov`'s count by [`UserRefs::scrub`]: no reference may be
/// given or put any more.
const CLOSED: u32 = 1 << 31;

/// The most user references one `net_iov` may carry (`MSG_PEEK` takes one
/// per peek, so the frags do not bound it); a give beyond it falls back to a
/// token.
const CAP: u32 = CLOSED - 1;

/// Where the ring's parts start, in bytes from its start: each on a cache
/// line of its own, since the kernel writes `head` and user space `tail`
/// from different CPUs. Reported to user space in bind-rx's reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) head: u32,
    pub(crate) tail: u32,
    pub(crate) entries: u32,
}

impl Layout {
    /// The layout for cache lines of `line` bytes (a power of two from 8
    /// to a page), and the bytes a ring of `entries` entries needs with it.
    pub(crate) fn new(line: u32, entries: u32) -> Result<(Self, usize)> {
        if !line.is_power_of_two()
            || line < 8
            || line as usize > bindings::PAGE_SIZE
            || !entries.is_power_of_two()
        {
            return Err(EINVAL);
        }
        if entries > MAX_ENTRIES {
            return Err(EINVAL);
        }
        let layout = Self {
            head: 0,
            tail: line,
            entries: 2 * line,
        };
        // At most two pages and 8 * 32768 bytes: no overflow.
        let bytes = layout.entries as usize + 8 * entries as usize;
        Ok((layout, bytes))
    }
}

/// A binding's refill ring: user space produces entries (frag offsets) at
/// `tail`, the kernel consumes them from `head`.
///
/// # Invariants
///
/// `mem` holds the whole ring as `layout` places it, `entries` a power of
/// two; `cached_head` is the only record of what was consumed: `head` in
/// user memory is written from it and never read back.
pub(crate) struct RefillRing {
    mem: PinnedMemfd,
    layout: Layout,
    entries: u32,
    cached_head: u32,
    consumed: u64,
    rejected: u64,
}

impl RefillRing {
    /// A ring of `entries` entries in `mem`, laid out for cache lines of
    /// `line` bytes; `EINVAL` if `mem` is too small for it.
    pub(crate) fn new(mem: PinnedMemfd, entries: u32, line: u32) -> Result<Self> {
        let (layout, bytes) = Layout::new(line, entries)?;
        if mem.len() < bytes {
            return Err(EINVAL);
        }
        let mut ring = Self {
            mem,
            layout,
            entries,
            cached_head: 0,
            consumed: 0,
            rejected: 0,
        };
        // User space may have left anything in the memory: the ring starts
        // empty, with `head` where `tail` is, so that nothing left there
        // is taken for entries.
        let tail = ring.index(layout.tail)?.load(Acquire);
        // INVARIANT: the layout fits in `mem` (checked above), and the
        // kernel's head starts where user space's tail is.
        ring.cached_head = tail;
        ring.index(layout.head)?.store(tail, Release);
        Ok(ring)
    }

    /// Where the ring's parts are, for bind-rx's reply.
    pub(crate) fn layout(&self) -> Layout {
        self.layout
    }

    /// Entries read since the bind, and of those, rejected.
    pub(crate) fn counters(&self) -> (u64, u64) {
        (self.consumed, self.rejected)
    }

    fn index(&self, at: u32) -> Result<&Atomic<u32>> {
        self.mem.atomic::<u32>(at as usize).ok_or(EINVAL)
    }

    /// Consumes up to `max` entries user space produced, oldest first,
    /// handing each to `give_back`, which returns whether it accepted it;
    /// a refused entry is counted as rejected. Publishes the new `head` and
    /// returns how many entries `give_back` accepted.
    ///
    /// `tail` is read once: entries produced after it are left for the
    /// next call, and a `tail` more than a ring ahead of `head` (user space
    /// lying) yields one ring's worth.
    pub(crate) fn drain(&mut self, max: usize, mut give_back: impl FnMut(u64) -> bool) -> usize {
        let Ok(tail) = self.index(self.layout.tail) else {
            return 0;
        };
        // Acquire: the entries up to `tail` were written before it.
        let produced = tail.load(Acquire).wrapping_sub(self.cached_head);
        let n = produced.min(self.entries) as usize;
        let n = n.min(max);
        let mask = self.entries - 1;
        let mut accepted = 0;
        for _ in 0..n {
            let slot = self.cached_head & mask;
            // `slot` is below `entries`, and the layout holds them all
            // (type invariant): the lookup cannot fail.
            let at = self.layout.entries as usize + 8 * slot as usize;
            let entry = self.mem.atomic::<u64>(at).map(|e| e.load(Relaxed));
            self.cached_head = self.cached_head.wrapping_add(1);
            self.consumed += 1;
            match entry {
                Some(e) if give_back(e) => accepted += 1,
                _ => self.rejected += 1,
            }
        }
        if n > 0 {
            if let Ok(head) = self.index(self.layout.head) {
                // Release: the slots are read before user space may reuse
                // them.
                head.store(self.cached_head, Release);
            }
        }
        accepted
    }
}

/// The user references of a ring binding's `net_iov`s, one count each.
///
/// # Invariants
///
/// A count below [`CLOSED`] is at most [`CAP`]; once [`CLOSED`] is set it
/// stays set, and the count under it is zero. Each unit of a count stands
/// for one page_pool reference on that `net_iov`, taken by its giver and
/// owned by whoever takes the unit back ([`UserRefs::put`],
/// [`UserRefs::scrub`]).
pub(crate) struct UserRefs(KVVec<Atomic<u32>>);

impl UserRefs {
    /// Counts for `niovs` `net_iov`s, all zero.
    pub(crate) fn new(niovs: usize) -> Result<Self> {
        let mut v = KVVec::with_capacity(niovs, GFP_KERNEL)?;
        for _ in 0..niovs {
            v.push(Atomic::new(0), GFP_KERNEL)?;
        }
        // INVARIANT: every count zero: below the cap, not closed, and
        // standing for no page_pool reference.
        Ok(Self(v))
    }

    /// How many `net_iov`s are counted.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Adds a reference to `net_iov` `i`; `false` (nothing changed) if
    /// there is no such `net_iov`, it was scrubbed, or it is at the cap.
    ///
    /// # Safety
    ///
    /// `i` is the slot of a `net_iov` lent to a page pool, on which the
    /// caller took a page_pool reference that the new unit owns if this
    /// returns `true` (the type's invariant).
    pub(crate) unsafe fn give(&self, i: usize) -> bool {
        let Some(c) = self.0.get(i) else {
            return false;
        };
        let mut old = c.load(Relaxed);
        loop {
            if old >= CAP {
                return false;
            }
            // Release: the page_pool reference the caller took for this
            // user reference is seen by whoever puts it (`put`'s Acquire)
            // before it drops that page_pool reference.
            // INVARIANT: `old` is below `CAP`, which is below `CLOSED`, so
            // the count stays at most `CAP` and open; the new unit owns the
            // caller's page_pool reference (precondition).
            match c.cmpxchg(old, old + 1, Release) {
                Ok(_) => return true,
                Err(now) => old = now,
            }
        }
    }

    /// Takes a reference from `net_iov` `i` back; `false` (nothing
    /// changed) if there is no such `net_iov`, it holds none, or it was
    /// scrubbed.
    pub(crate) fn put(&self, i: usize) -> bool {
        let Some(c) = self.0.get(i) else {
            return false;
        };
        let mut old = c.load(Relaxed);
        loop {
            if old == 0 || old & CLOSED != 0 {
                return false;
            }
            // Acquire: pairs with `give`'s Release, so the page_pool
            // reference the give accounts for is seen before the caller
            // drops it.
            // INVARIANT: an open count above zero drops by one and stays
            // open; the unit taken, and its page_pool reference, are the
            // caller's.
            match c.cmpxchg(old, old - 1, Acquire) {
                Ok(_) => return true,
                Err(now) => old = now,
            }
        }
    }

    /// Closes every count, those at zero included, so that no reference
    /// is given or put from here on; calls `drop_refs(i, n)` for each
    /// `net_iov` `i` that held `n` > 0, whose references the caller then
    /// owns. Returns the references taken.
    pub(crate) fn scrub(&self, mut drop_refs: impl FnMut(usize, u32)) -> u64 {
        let mut total = 0;
        for (i, c) in self.0.iter().enumerate() {
            // INVARIANT: `CLOSED` with a zero count under it.
            // Full: as `put`, the gives' page_pool references are seen
            // before `drop_refs` drops them.
            let n = c.xchg(CLOSED, Full) & !CLOSED;
            if n > 0 {
                total += u64::from(n);
                drop_refs(i, n);
            }
        }
        total
    }

    /// The references outstanding, for `dmabuf-get` (a sum of counts that
    /// may move while it is taken).
    pub(crate) fn outstanding(&self) -> u64 {
        self.0
            .iter()
            .map(|c| u64::from(c.load(Relaxed) & !CLOSED))
            .sum()
    }
}

#[cfg(CONFIG_NET_DEVMEM_KUNIT_TEST)]
#[kernel::macros::kunit_tests(devmem_refill)]
mod tests {
    use super::*;
    use crate::abstractions::memfd::test_util::test_memfd;
    use kernel::bindings;

    const PAGE: usize = bindings::PAGE_SIZE;
    const TEST_LINE: u32 = 64;

    fn ring(entries: u32) -> Result<RefillRing> {
        let (_, bytes) = Layout::new(TEST_LINE, entries)?;
        let file = test_memfd(bytes.div_ceil(PAGE))?;
        RefillRing::new(PinnedMemfd::pin(&file, 0, bytes)?, entries, TEST_LINE)
    }

    /// What user space does: writes `entry` at `tail` and publishes it.
    fn produce(r: &RefillRing, entry: u64) -> Result {
        let l = r.layout();
        let tail = r.mem.atomic::<u32>(l.tail as usize).ok_or(EINVAL)?;
        let t = tail.load(Relaxed);
        let at = l.entries as usize + 8 * (t & (r.entries - 1)) as usize;
        r.mem.atomic::<u64>(at).ok_or(EINVAL)?.store(entry, Relaxed);
        tail.store(t.wrapping_add(1), Release);
        Ok(())
    }

    fn set_tail(r: &RefillRing, t: u32) -> Result {
        r.mem
            .atomic::<u32>(r.layout().tail as usize)
            .ok_or(EINVAL)?
            .store(t, Release);
        Ok(())
    }

    fn head(r: &RefillRing) -> Result<u32> {
        Ok(r.mem
            .atomic::<u32>(r.layout().head as usize)
            .ok_or(EINVAL)?
            .load(Acquire))
    }

    #[test]
    fn layout_and_refusals() -> Result {
        let (l, bytes) = Layout::new(64, 8)?;
        assert_eq!(
            l,
            Layout {
                head: 0,
                tail: 64,
                entries: 128
            }
        );
        assert_eq!(bytes, 128 + 64);
        assert_eq!(Layout::new(64, 0).err(), Some(EINVAL));
        assert_eq!(Layout::new(64, 3).err(), Some(EINVAL));
        assert_eq!(Layout::new(64, MAX_ENTRIES * 2).err(), Some(EINVAL));
        assert_eq!(Layout::new(48, 8).err(), Some(EINVAL));
        // The largest ring fits the most a memfd pin takes.
        let (_, max) = Layout::new(64, MAX_ENTRIES)?;
        assert!(max.div_ceil(PAGE) <= crate::abstractions::memfd::MAX_PAGES);
        // Memory too small for the ring.
        let file = test_memfd(1)?;
        let mem = PinnedMemfd::pin(&file, 0, PAGE)?;
        assert_eq!(RefillRing::new(mem, 1024, TEST_LINE).err(), Some(EINVAL));
        Ok(())
    }

    #[test]
    fn drains_in_order_and_publishes_head() -> Result {
        let mut r = ring(4)?;
        for e in [10u64, 20, 30] {
            produce(&r, e)?;
        }
        let mut seen = KVVec::new();
        let n = r.drain(2, |e| {
            let _ = seen.push(e, GFP_KERNEL);
            true
        });
        assert_eq!(n, 2);
        assert_eq!(head(&r)?, 2);
        let n = r.drain(16, |e| {
            let _ = seen.push(e, GFP_KERNEL);
            e != 30
        });
        assert_eq!(n, 0);
        assert_eq!(&seen[..], &[10, 20, 30]);
        assert_eq!(head(&r)?, 3);
        assert_eq!(r.counters(), (3, 1));
        // Across the wrap of the slots.
        for e in 0..4u64 {
            produce(&r, 100 + e)?;
        }
        assert_eq!(r.drain(16, |e| e >= 100), 4);
        assert_eq!(head(&r)?, 7);
        // Across the wrap of the indices: two entries before `u32::MAX`
        // and two after.
        r.cached_head = u32::MAX - 1;
        set_tail(&r, u32::MAX - 1)?;
        for e in 0..4u64 {
            produce(&r, 200 + e)?;
        }
        let mut seen = KVVec::new();
        assert_eq!(
            r.drain(16, |e| {
                let _ = seen.push(e, GFP_KERNEL);
                true
            }),
            4
        );
        assert_eq!(&seen[..], &[200, 201, 202, 203]);
        assert_eq!(head(&r)?, 2);
        Ok(())
    }

    #[test]
    fn starts_empty_whatever_was_left() -> Result {
        let (l, bytes) = Layout::new(TEST_LINE, 8)?;
        let file = test_memfd(bytes.div_ceil(PAGE))?;
        // What user space left: indices and entries of an earlier use.
        let old = PinnedMemfd::pin(&file, 0, bytes)?;
        old.atomic::<u32>(l.head as usize)
            .ok_or(EINVAL)?
            .store(7, Relaxed);
        old.atomic::<u32>(l.tail as usize)
            .ok_or(EINVAL)?
            .store(1234, Relaxed);
        old.atomic::<u64>(l.entries as usize)
            .ok_or(EINVAL)?
            .store(99, Relaxed);
        let mut r = RefillRing::new(PinnedMemfd::pin(&file, 0, bytes)?, 8, TEST_LINE)?;
        assert_eq!(head(&r)?, 1234);
        let mut calls = 0;
        assert_eq!(
            r.drain(usize::MAX, |_| {
                calls += 1;
                true
            }),
            0
        );
        assert_eq!(calls, 0);
        assert_eq!(r.counters(), (0, 0));
        produce(&r, 5)?;
        assert_eq!(r.drain(usize::MAX, |e| e == 5), 1);
        Ok(())
    }

    #[test]
    fn a_lying_user_gets_one_ring_at_most() -> Result {
        let mut r = ring(8)?;
        // `tail` far past `head`: one ring's worth of whatever is there.
        set_tail(&r, 1000)?;
        let mut calls = 0;
        assert_eq!(
            r.drain(usize::MAX, |_| {
                calls += 1;
                false
            }),
            0
        );
        assert_eq!(calls, 8);
        assert_eq!(r.counters(), (8, 8));
        // `tail` behind `head` wraps to a huge count: still one ring.
        set_tail(&r, 0)?;
        calls = 0;
        r.drain(usize::MAX, |_| {
            calls += 1;
            false
        });
        assert_eq!(calls, 8);
        // User space overwrites `head`: the kernel does not read it back.
        r.mem.atomic::<u32>(0).ok_or(EINVAL)?.store(12345, Relaxed);
        set_tail(&r, 17)?;
        calls = 0;
        r.drain(usize::MAX, |_| {
            calls += 1;
            true
        });
        assert_eq!(calls, 1);
        assert_eq!(head(&r)?, 17);
        Ok(())
    }

    fn give(refs: &UserRefs, i: usize) -> bool {
        // SAFETY: these counts stand for no page_pool reference, and
        // nothing here drops one for them (the scrub's callback records).
        unsafe { refs.give(i) }
    }

    #[test]
    fn references_give_put_scrub() -> Result {
        let refs = UserRefs::new(4)?;
        assert!(!refs.put(0));
        assert!(give(&refs, 0));
        assert!(give(&refs, 0));
        assert!(give(&refs, 3));
        assert!(!give(&refs, 4));
        assert!(!refs.put(4));
        assert_eq!(refs.outstanding(), 3);
        assert!(refs.put(0));
        assert!(refs.put(0));
        assert!(!refs.put(0));
        // The cap.
        refs.0[1].store(CAP - 1, Relaxed);
        assert!(give(&refs, 1));
        assert!(!give(&refs, 1));
        // The scrub closes every count, those at zero too.
        let mut dropped = KVVec::new();
        let total = refs.scrub(|i, n| {
            let _ = dropped.push((i, n), GFP_KERNEL);
        });
        assert_eq!(&dropped[..], &[(1, CAP), (3, 1)]);
        assert_eq!(total, u64::from(CAP) + 1);
        for i in 0..4 {
            assert!(!give(&refs, i));
            assert!(!refs.put(i));
        }
        assert_eq!(refs.outstanding(), 0);
        Ok(())
    }
}
