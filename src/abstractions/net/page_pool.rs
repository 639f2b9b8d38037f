// SPDX-License-Identifier: GPL-2.0

//! page_pool memory providers.
//!
//! A memory provider hands a page pool its buffers (`net_iov`s) instead of
//! pages. A Rust provider implements [`MemoryProvider`]; [`Adapter`] turns
//! that into the C `struct memory_provider_ops`, the way `phy::Adapter`
//! turns a `phy::Driver` into a `phy_driver`. The adapter owns the pool's
//! reference on the provider's data: it takes one when `init` succeeds and
//! drops it in `destroy`, so every callback that gets a pool also gets
//! `&Data` for as long as it runs.
//!
//! Buffers cross into the pool only through [`PagePoolRefill::adopt`] and
//! [`PagePoolRefill::adopt_into_cache`], in `alloc_netmems`, which refuse a buffer of other
//! provider data than the pool's (the pool pins only its own), and come back
//! in `release_netmem` as the provider's own buffer type.
//!
//! Shaped as `rust/kernel/net/page_pool.rs` would be.
//!
//! C header: [`include/net/page_pool/memory_provider.h`]
//!
//! [`include/net/page_pool/memory_provider.h`]: srctree/include/net/page_pool/memory_provider.h

use super::RxQueue;
use crate::abstractions::bug::warn_on_once;
use core::{marker::PhantomData, mem::ManuallyDrop, ptr::NonNull};
use kernel::{
    bindings,
    error::VTABLE_DEFAULT_ERROR,
    prelude::*,
    sync::aref::{ARef, AlwaysRefCounted},
    sync::atomic::{Atomic, Full, Relaxed},
    types::Opaque,
};

/// A buffer a memory provider owns and may lend to a page pool.
///
/// # Safety
///
/// - `as_net_iov` returns the same live `net_iov` every time, which only
///   this value owns: nothing changes its page_pool state but the owner of
///   this value (TCP may still change its `pp_ref_count`, which is only ever
///   accessed atomically), and no page pool but one that gave it back to
///   `release_netmem` still has it.
/// - The `net_iov` stays alive as long as the provider data it belongs to
///   (`belongs_to`) does.
/// - `from_net_iov` takes back exactly what [`into_net_iov`] gave away.
pub(crate) unsafe trait ProviderBuf<D>: Sized {
    /// The `net_iov`.
    fn as_net_iov(&self) -> NonNull<bindings::net_iov>;

    /// Whether the buffer belongs to `data`, which keeps it alive.
    fn belongs_to(&self, data: &D) -> bool;

    /// Takes back a buffer given away with [`ProviderBuf::into_net_iov`].
    ///
    /// # Safety
    ///
    /// `niov` must come from `into_net_iov` on a value of this type whose
    /// provider data is alive for the result's lifetime, and not have been
    /// taken back since.
    unsafe fn from_net_iov(niov: NonNull<bindings::net_iov>) -> Self;

    /// The page_pool reference count, read once.
    fn pp_ref_count(&self) -> i64 {
        pp_ref_count(self).load(Relaxed)
    }

    /// Clears the page_pool state a previous owner may have left, as C
    /// providers do when they hand a `net_iov` out again.
    fn reset_pp_state(&self) {
        let niov = self.as_net_iov().as_ptr();
        // SAFETY: the `net_iov` is alive and owned by `self` (trait
        // contract), so no pool or socket uses its pool info.
        unsafe {
            (*niov).desc.pp_magic = 0;
            (*niov).desc.pp = core::ptr::null_mut();
        }
        pp_ref_count(self).store(0, Relaxed);
    }
}

/// Gives a buffer away, as its raw `net_iov` (the one `as_net_iov` names).
pub(crate) fn into_net_iov<D, B: ProviderBuf<D>>(buf: B) -> NonNull<bindings::net_iov> {
    ManuallyDrop::new(buf).as_net_iov()
}

/// The netmem reference of a `net_iov`: its address with bit `NET_IOV` set,
/// the encoding of `include/net/netmem.h` (`net_iov_to_netmem()`), here
/// without a call to the C helper on the per-buffer paths.
fn net_iov_to_netmem(niov: *mut bindings::net_iov) -> bindings::netmem_ref {
    // `netmem_ref` is an `unsigned long`, the kernel's `usize`.
    niov.expose_provenance() | bindings::NET_IOV as usize
}

/// The `net_iov` a netmem reference names, if it is one (bit `NET_IOV`
/// set, as `netmem_is_net_iov()` and `netmem_to_net_iov()` test).
fn netmem_to_net_iov(netmem: bindings::netmem_ref) -> Option<NonNull<bindings::net_iov>> {
    let bits: usize = netmem;
    if bits & bindings::NET_IOV as usize == 0 {
        return None;
    }
    NonNull::new(core::ptr::with_exposed_provenance_mut(
        bits & !(bindings::NET_IOV as usize),
    ))
}

/// The value `netmem_desc::dma_addr` holds for DMA address `addr`: what
/// `page_pool_set_dma_addr_netmem()` stores and the public decoder,
/// `page_pool_get_dma_addr_netmem()`, reads back. Both shift by
/// `PAGE_SHIFT` only where `dma_addr_t` is wider than `unsigned long`,
/// which the assertion below rules out, so the value is the address. A
/// provider that writes its `net_iov`s whole (devmem's arena, at bind)
/// sets it with the rest, without a call per buffer.
pub(crate) fn netmem_dma_addr_field(addr: bindings::dma_addr_t) -> c_ulong {
    addr as c_ulong
}

// `PAGE_POOL_32BIT_ARCH_WITH_64BIT_DMA` is false: the identity encoding
// of `netmem_dma_addr_field` is page_pool's, and its cast loses nothing.
const _: () =
    assert!(core::mem::size_of::<bindings::dma_addr_t>() <= core::mem::size_of::<c_ulong>());

/// The `pp_ref_count` of a buffer's `net_iov`.
fn pp_ref_count<D, B: ProviderBuf<D>>(buf: &B) -> &Atomic<i64> {
    // SAFETY: the `net_iov` is alive while `buf` is (trait contract); the
    // counter is an `atomic_long_t`, 64-bit on the 64-bit kernels this is
    // built for (Kconfig), and only ever accessed atomically, by C and here.
    unsafe { Atomic::from_ptr(&raw mut (*buf.as_net_iov().as_ptr()).desc.pp_ref_count.counter) }
}

/// A netmem reference a page pool owns, made only by lending its pool a
/// buffer during one `alloc_netmems` call, and returned from that call.
///
/// # Invariants
///
/// Made only by [`PagePoolRefill::adopt`], from a buffer of the pool's
/// data, or by [`PagePoolRefill::take_cached`], from the pool's own cache;
/// `'r` is the refill it was made in, so it cannot outlive the call or be
/// handed to another pool.
#[must_use = "dropping a Netmem leaks the buffer its pool now owns"]
pub(crate) struct Netmem<'r>(bindings::netmem_ref, PhantomData<&'r mut ()>);

/// Page_pool references (`pp_ref_count`) on a `net_iov` a pool holds,
/// taken by someone outside the pool (a frag handed to a socket's user) and
/// given back here.
///
/// # Invariants
///
/// `self.0` is a `net_iov` lent to a page pool, alive for `'a`, on which this
/// value owns `self.1` (at least one) of its `pp_ref_count` references.
pub(crate) struct PoolRefs<'a>(NonNull<bindings::net_iov>, i64, PhantomData<&'a ()>);

impl<'a> PoolRefs<'a> {
    /// Takes over `n` references on `niov`; `None` for none.
    ///
    /// # Safety
    ///
    /// `niov` is a `net_iov` lent to a page pool and alive for `'a`, on which
    /// the caller owns `n` `pp_ref_count` references, which it gives up.
    pub(crate) unsafe fn from_raw(niov: NonNull<bindings::net_iov>, n: u32) -> Option<Self> {
        // INVARIANT: the caller's references, at least one.
        (n > 0).then(|| Self(niov, i64::from(n), PhantomData))
    }

    /// Drops the references, as `page_pool_unref_netmem()` does; if they
    /// were the last, the `net_iov` is its pool's alone again and is
    /// returned, to go back to the pool.
    pub(crate) fn unref(self) -> Option<Unrefed<'a>> {
        // SAFETY: alive for `'a` (type invariant); the counter is an
        // `atomic_long_t`, 64-bit here, only ever accessed atomically.
        let count: &Atomic<i64> =
            unsafe { Atomic::from_ptr(&raw mut (*self.0.as_ptr()).desc.pp_ref_count.counter) };
        let n = self.1;
        // The last references: nobody else can take one (a reference is
        // only taken from another), so no update is needed but the reset
        // to one, the count of a buffer the pool holds alone.
        let left = if count.load(Relaxed) == n {
            0
        } else {
            count.fetch_sub(n, Full) - n
        };
        if warn_on_once!(left < 0) {
            return None;
        }
        if left > 0 {
            return None;
        }
        count.store(1, Relaxed);
        // INVARIANT: the last references are gone; the pool holds it alone.
        Some(Unrefed(self.0, PhantomData))
    }
}

/// A `net_iov` lent to a page pool whose last references outside the pool
/// were just dropped: it goes back to its pool, into its cache
/// ([`PagePoolRefill::place`]) or through its recycling ([`Unrefed::recycle`]).
///
/// # Invariants
///
/// `self.0` is lent to a page pool (its `pp` set), alive for `'a`, and
/// referenced by nothing outside that pool.
#[must_use = "an Unrefed net_iov is lost unless it goes back to its pool"]
pub(crate) struct Unrefed<'a>(NonNull<bindings::net_iov>, PhantomData<&'a ()>);

impl Unrefed<'_> {
    fn pool(&self) -> *mut bindings::page_pool {
        // SAFETY: alive (type invariant); a lent `net_iov`'s pool does not
        // change until the pool gives it back.
        unsafe { (*self.0.as_ptr()).desc.pp }
    }

    /// Gives it back to its pool as a freed buffer: the pool's ring, its
    /// cache if called from its NAPI context, or, if the ring is full, the
    /// provider's `release_netmem`.
    pub(crate) fn recycle(self) {
        let pool = self.pool();
        if warn_on_once!(pool.is_null()) {
            return;
        }
        // SAFETY: the pool it is lent to is alive (a pool lives until every
        // buffer it lent comes back), and the buffer is the pool's alone
        // (type invariant), given to it here; `-1` syncs the whole buffer
        // (devmem pools sync nothing).
        unsafe {
            bindings::page_pool_put_unrefed_netmem(
                pool,
                net_iov_to_netmem(self.0.as_ptr()),
                u32::MAX,
                false,
            )
        };
    }
}

/// A netlink message being built, for `nl_fill`.
#[repr(transparent)]
pub(crate) struct NlMsg(Opaque<bindings::sk_buff>);

impl NlMsg {
    /// Adds a `u32` attribute; `EMSGSIZE` when the message is full.
    pub(crate) fn put_u32(&self, attr: u32, value: u32) -> Result {
        let attr = c_int::try_from(attr).map_err(|_| EINVAL)?;
        // SAFETY: the message is being built by the netlink code that called
        // `nl_fill`, which owns it for the call (`Adapter::nl_fill`).
        kernel::error::to_result(unsafe { bindings::nla_put_u32(self.0.get(), attr, value) })
    }
}

/// A memory provider.
#[vtable]
pub(crate) trait MemoryProvider: Sized + 'static {
    /// The provider's private data (`mp_priv`), one per installation. A
    /// pool's reference on it may be dropped from any context.
    type Data: AlwaysRefCounted + Send + Sync;

    /// The buffers it hands out, borrowing their data.
    type Buf<'a>: ProviderBuf<Self::Data>;

    /// Checks and sets up a pool that is being created on a queue the
    /// provider is installed on. On success the pool holds a reference on
    /// the data until it is destroyed.
    fn init(pool: &PagePoolInit<'_, Self>) -> Result;

    /// Buffers for a pool whose cache is empty: one returned, more placed
    /// in the cache. `None` when the provider has none left.
    fn alloc_netmems<'r>(pool: &'r PagePoolRefill<'_, Self>) -> Option<Netmem<'r>>;

    /// Takes back a buffer whose last pool reference is gone (`None`: the
    /// pool gave back a page, which a provider pool never holds). Returns
    /// whether the pool should free it as a page. The adapter checks first
    /// that nothing else references the buffer and that it is of the pool's
    /// data; one that is not never reaches the provider.
    fn release_netmem<'a>(pool: &'a PagePool<Self>, buf: Option<Self::Buf<'a>>) -> bool;

    /// Reports the provider on a queue (`rxq`) or a pool (`None`).
    fn nl_fill(_data: &Self::Data, _rsp: &NlMsg, _rxq: Option<&RxQueue>) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// The installation on a queue ends: the queue stopped using the
    /// provider.
    fn uninstall(_data: &Self::Data, _rxq: &Uninstalled<'_>) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
}

/// An RX queue whose installation of a provider is ending: the queue no
/// longer fills buffers from it (its device unregisters, or a queue lease
/// ended and the queue was reconfigured without it).
///
/// # Invariants
///
/// The queue will not use the provider's buffers again.
pub(crate) struct Uninstalled<'a>(&'a RxQueue);

impl Uninstalled<'_> {
    /// The queue.
    pub(crate) fn queue(&self) -> &RxQueue {
        self.0
    }
}

/// A page pool of provider `T`, as its callbacks see it.
///
/// # Invariants
///
/// The pool's `mp_priv` is null or a `T::Data` that is alive while the
/// pool is borrowed: the pool holds a reference on it (taken by
/// [`Adapter`] in `init`), or, during `init`, the queue's installation does.
#[repr(transparent)]
pub(crate) struct PagePool<T: MemoryProvider>(Opaque<bindings::page_pool>, PhantomData<T>);

impl<T: MemoryProvider> PagePool<T> {
    /// # Safety
    ///
    /// `pool` must be a page pool with `T`'s ops whose data is alive for
    /// `'a`, as the type invariant says.
    unsafe fn from_raw<'a>(pool: *mut bindings::page_pool) -> &'a Self {
        // SAFETY: transparent wrapper of `Opaque<page_pool>`; alive for `'a`
        // (caller).
        unsafe { &*pool.cast() }
    }

    fn as_raw(&self) -> *mut bindings::page_pool {
        self.0.get()
    }

    /// The provider data the pool was created with, if any.
    pub(crate) fn data(&self) -> Option<&T::Data> {
        // SAFETY: the pool is alive; `mp_priv` is copied from the queue's
        // parameters before `init` and never changes afterwards.
        let data = unsafe { (*self.as_raw()).mp_priv };
        // SAFETY: a non-null `mp_priv` is a `T::Data` alive while the pool
        // is borrowed (type invariant; `MpParams::new` stored it).
        unsafe { data.cast::<T::Data>().as_ref() }
    }

    /// The allocation order the driver asked for.
    pub(crate) fn order(&self) -> u32 {
        // SAFETY: the pool is alive; its parameters are constant after
        // creation.
        unsafe { (*self.as_raw()).p.order }
    }
}

/// A page pool in its provider's `init`, before anything else uses it.
///
/// No buffer may be lent to it here: if `init` or the rest of the pool's
/// creation fails, the pool is freed without waiting for any.
///
/// # Invariants
///
/// Only the provider's `init` runs on the pool.
pub(crate) struct PagePoolInit<'a, T: MemoryProvider>(&'a PagePool<T>);

impl<T: MemoryProvider> PagePoolInit<'_, T> {
    /// The provider data the pool is being created with.
    pub(crate) fn data(&self) -> Option<&T::Data> {
        self.0.data()
    }

    /// The allocation order the driver asked for.
    pub(crate) fn order(&self) -> u32 {
        self.0.order()
    }

    /// Turns off DMA syncs, which a provider's addresses must not get.
    pub(crate) fn disable_dma_sync(&self) {
        // SAFETY: the pool is alive and only `init` runs on it (type
        // invariant), so the bitfield update races with nobody.
        unsafe {
            (*self.0.as_raw()).set_dma_sync(false);
            (*self.0.as_raw()).set_dma_sync_for_cpu(false);
        }
    }
}

/// A page pool in its provider's `alloc_netmems`: its allocation cache is
/// the provider's until it returns (`net_mp_netmem_place_in_cache`).
///
/// # Invariants
///
/// The pool is in its `alloc_netmems`, called from its allocation context:
/// nothing else touches its cache until the call returns.
pub(crate) struct PagePoolRefill<'a, T: MemoryProvider>(&'a PagePool<T>);

impl<T: MemoryProvider> PagePoolRefill<'_, T> {
    /// The provider data the pool was created with.
    pub(crate) fn data(&self) -> Option<&T::Data> {
        self.0.data()
    }

    /// Lends `buf` to the pool, with the `page_pool_state_hold` trace
    /// point; returns the netmem the pool now owns, to be returned from this
    /// `alloc_netmems`. A buffer of other data than the pool's is given
    /// back: the pool would not keep it alive.
    pub(crate) fn adopt<'b>(&self, buf: T::Buf<'b>) -> Result<Netmem<'_>, T::Buf<'b>> {
        if !self.0.data().is_some_and(|d| buf.belongs_to(d)) {
            return Err(buf);
        }
        let niov = into_net_iov(buf).as_ptr();
        // SAFETY: the pool is alive; `niov` was owned by `buf`, so no other
        // pool has it, and its data is the pool's, which the pool keeps alive
        // for as long as it holds the `net_iov`.
        unsafe { bindings::net_mp_niov_set_page_pool(self.0.as_raw(), niov) };
        // INVARIANT: made here, from a buffer of the pool's data, for this
        // refill.
        Ok(Netmem(net_iov_to_netmem(niov), PhantomData))
    }

    /// How many more buffers the cache takes.
    pub(crate) fn cache_room(&self) -> usize {
        let pool = self.0.as_raw();
        // SAFETY: the pool is alive and its cache ours for the call (type
        // invariant).
        unsafe {
            (*pool)
                .alloc
                .cache
                .len()
                .saturating_sub((*pool).alloc.count as usize)
        }
    }

    /// Lends `buf` to the pool (as [`PagePoolRefill::adopt`]) and puts it in the
    /// pool's cache, where the next allocations find it; gives it back if
    /// the cache is full or the buffer is of other data.
    pub(crate) fn adopt_into_cache<'b>(&self, buf: T::Buf<'b>) -> Result<(), T::Buf<'b>> {
        if self.cache_room() == 0 {
            return Err(buf);
        }
        let netmem = self.adopt(buf)?;
        // SAFETY: the cache is ours for the call (type invariant) and has
        // room (checked above); the netmem is one the pool now owns.
        unsafe { bindings::net_mp_netmem_place_in_cache(self.0.as_raw(), netmem.0) };
        Ok(())
    }
}

impl<T: MemoryProvider> PagePoolRefill<'_, T> {
    /// Puts `buf`, this pool's already, into the pool's cache; gives it
    /// back if it is another pool's or the cache is full.
    pub(crate) fn place<'u>(&self, buf: Unrefed<'u>) -> Result<(), Unrefed<'u>> {
        if buf.pool() != self.0.as_raw() || self.cache_room() == 0 {
            return Err(buf);
        }
        // SAFETY: the cache is ours for the call (type invariant) and has
        // room (checked above); the buffer is this pool's, held by nothing
        // else (`Unrefed`'s invariant), and already counted as the pool's.
        unsafe {
            bindings::net_mp_netmem_place_in_cache(
                self.0.as_raw(),
                net_iov_to_netmem(buf.0.as_ptr()),
            )
        };
        Ok(())
    }

    /// Takes the most recently placed buffer out of the pool's cache, to
    /// return from `alloc_netmems`.
    pub(crate) fn take_cached(&self) -> Option<Netmem<'_>> {
        let pool = self.0.as_raw();
        // SAFETY: the pool is alive and its cache ours for the call (type
        // invariant); the first `count` entries are buffers the pool owns.
        unsafe {
            let count = (*pool).alloc.count as usize;
            if count == 0 {
                return None;
            }
            (*pool).alloc.count -= 1;
            // INVARIANT: a buffer of this pool, returned from this refill.
            Some(Netmem((*pool).alloc.cache[count - 1], PhantomData))
        }
    }
}

/// Takes a buffer back from the pool it was lent to (clears its pool info),
/// in `release_netmem`.
pub(crate) fn disown<D, B: ProviderBuf<D>>(buf: &B) {
    // SAFETY: the `net_iov` is alive and owned by `buf` (trait contract): the
    // pool gave it back, so nothing else touches its pool info.
    unsafe { bindings::net_mp_niov_clear_page_pool(buf.as_net_iov().as_ptr()) };
}

/// The ops table of provider `T`, for a `static`: `page_pool_init` accepts
/// only ops in read-only data.
pub(crate) struct Ops<T: MemoryProvider>(bindings::memory_provider_ops, PhantomData<T>);

// SAFETY: the table holds only function pointers, never written after it is
// built.
unsafe impl<T: MemoryProvider> Sync for Ops<T> {}

impl<T: MemoryProvider> Ops<T> {
    /// `T`'s ops, through [`Adapter`].
    pub(crate) const fn new() -> Self {
        Self(Adapter::<T>::OPS, PhantomData)
    }
}

/// The parameters that install provider `T` on a queue.
///
/// # Invariants
///
/// `mp_ops` are `T`'s ops ([`Ops`]) and `mp_priv` a `T::Data`.
pub(crate) struct MpParams(bindings::pp_memory_provider_params);

impl MpParams {
    /// The parameters for provider `T` with `data`, asking the queue for
    /// buffers of `rx_page_size` bytes (0: the device's default).
    ///
    /// # Safety
    ///
    /// `data` must stay alive while the provider is installed on any queue
    /// with these parameters (until its `uninstall`, or until the queue is
    /// closed with them).
    pub(crate) unsafe fn new<T: MemoryProvider>(
        ops: &'static Ops<T>,
        data: &T::Data,
        rx_page_size: u32,
    ) -> Self {
        // INVARIANT: `T`'s ops, with a `T::Data`.
        Self(bindings::pp_memory_provider_params {
            mp_priv: core::ptr::from_ref(data).cast_mut().cast(),
            mp_ops: &ops.0,
            rx_page_size,
        })
    }

    pub(super) fn as_ptr(&self) -> *const bindings::pp_memory_provider_params {
        &self.0
    }
}

/// Builds `struct memory_provider_ops` for provider `T`.
pub(crate) struct Adapter<T: MemoryProvider>(PhantomData<T>);

impl<T: MemoryProvider> Adapter<T> {
    /// The ops; a provider puts them in a `static` with [`Ops::new`].
    const OPS: bindings::memory_provider_ops = bindings::memory_provider_ops {
        alloc_netmems: Some(Self::alloc_netmems),
        release_netmem: Some(Self::release_netmem),
        init: Some(Self::init),
        destroy: Some(Self::destroy),
        nl_fill: if T::HAS_NL_FILL {
            Some(Self::nl_fill)
        } else {
            None
        },
        uninstall: if T::HAS_UNINSTALL {
            Some(Self::uninstall)
        } else {
            None
        },
    };

    /// `init`: `EINVAL` for a pool without provider data, else the
    /// provider's verdict; on success the pool's reference on the data.
    ///
    /// # Safety
    ///
    /// `pool` is a page pool being created whose `mp_priv`, if set, comes
    /// from an [`MpParams`] of `T` whose installation is alive for the call.
    pub(crate) unsafe extern "C" fn init(pool: *mut bindings::page_pool) -> c_int {
        // SAFETY: the data is kept alive by the installation (caller).
        let pool = unsafe { PagePool::<T>::from_raw(pool) };
        let Some(data) = pool.data() else {
            return EINVAL.to_errno();
        };
        // INVARIANT: page_pool is creating the pool; only `init` runs on it.
        match T::init(&PagePoolInit(pool)) {
            Ok(()) => {
                // The pool's reference, dropped by `destroy`.
                let _ = ARef::into_raw(ARef::from(data));
                0
            }
            Err(e) => e.to_errno(),
        }
    }

    /// `destroy`: drops the reference `init` took.
    ///
    /// # Safety
    ///
    /// `pool` is a pool `init` accepted, being destroyed; called once.
    pub(crate) unsafe extern "C" fn destroy(pool: *mut bindings::page_pool) {
        // SAFETY: the pool is alive for the call.
        let data = unsafe { (*pool).mp_priv };
        if let Some(data) = NonNull::new(data.cast::<T::Data>()) {
            // SAFETY: `init` left this reference with the pool; it comes back
            // once, here.
            drop(unsafe { ARef::from_raw(data) });
        }
    }

    /// `alloc_netmems`.
    ///
    /// # Safety
    ///
    /// `pool` is a pool `init` accepted, called from its allocation context.
    pub(crate) unsafe extern "C" fn alloc_netmems(
        pool: *mut bindings::page_pool,
        _gfp: bindings::gfp_t,
    ) -> bindings::netmem_ref {
        // SAFETY: the pool holds the reference `init` took on its data.
        let pool = unsafe { PagePool::<T>::from_raw(pool) };
        // INVARIANT: page_pool calls `alloc_netmems` from the pool's
        // allocation context (caller).
        T::alloc_netmems(&PagePoolRefill(pool)).map_or(0, |n| n.0)
    }

    /// `release_netmem`.
    ///
    /// # Safety
    ///
    /// `pool` is a pool `init` accepted and `netmem` one it holds.
    pub(crate) unsafe extern "C" fn release_netmem(
        pool: *mut bindings::page_pool,
        netmem: bindings::netmem_ref,
    ) -> bool {
        // SAFETY: the pool holds the reference `init` took on its data.
        let pool = unsafe { PagePool::<T>::from_raw(pool) };
        let Some(niov) = netmem_to_net_iov(netmem) else {
            return T::release_netmem(pool, None);
        };
        // SAFETY: a provider's pool only ever holds netmems its provider
        // returned from `alloc_netmems` or put in its cache, each made by
        // `PagePoolRefill::adopt` for this pool (a `Netmem` cannot outlive
        // its refill) from a `T::Buf` of the pool's data, which the pool
        // keeps alive.
        let buf = unsafe { T::Buf::from_net_iov(niov) };
        // The provider gets the buffer only if it is alone with it and it is
        // of the pool's data, which keeps it alive for `'a`: a buffer some
        // other holder still references (C warns once and keeps it out of
        // the provider), or one of other data, is left alone.
        let ours = pool.data().is_some_and(|d| buf.belongs_to(d));
        if warn_on_once!(buf.pp_ref_count() != 1 || !ours) {
            core::mem::forget(buf);
            return false;
        }
        T::release_netmem(pool, Some(buf))
    }

    /// `nl_fill`.
    ///
    /// # Safety
    ///
    /// `mp_priv` is the data of an installation of `T` alive for the call,
    /// `rsp` a message being built, `rxq` null or a live queue.
    pub(crate) unsafe extern "C" fn nl_fill(
        mp_priv: *mut c_void,
        rsp: *mut bindings::sk_buff,
        rxq: *mut bindings::netdev_rx_queue,
    ) -> c_int {
        // SAFETY: netdev-genl calls `nl_fill` while it builds `rsp`, for a
        // queue or pool of a live installation of `T` whose data is
        // `mp_priv` (caller); `NlMsg` is a transparent wrapper of
        // `Opaque<sk_buff>`.
        let (data, rsp, rxq) = unsafe {
            (
                &*mp_priv.cast::<T::Data>(),
                &*rsp.cast::<NlMsg>(),
                (!rxq.is_null()).then(|| RxQueue::from_raw(rxq)),
            )
        };
        match T::nl_fill(data, rsp, rxq) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// `uninstall`.
    ///
    /// # Safety
    ///
    /// `mp_priv` is the data of an installation of `T` that is ending, alive
    /// for the call; `rxq` null or the queue it was installed on.
    pub(crate) unsafe extern "C" fn uninstall(
        mp_priv: *mut c_void,
        rxq: *mut bindings::netdev_rx_queue,
    ) {
        if rxq.is_null() {
            return;
        }
        // SAFETY: the core calls `uninstall` with the data of the ending
        // installation and its queue, both alive for the call (caller).
        let (data, rxq) = unsafe { (&*mp_priv.cast::<T::Data>(), RxQueue::from_raw(rxq)) };
        // INVARIANT: the core calls `uninstall` once the queue stopped using
        // the provider (caller).
        T::uninstall(data, &Uninstalled(rxq));
    }
}
