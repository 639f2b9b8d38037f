// SPDX-License-Identifier: GPL-2.0

//! The size of a binding's `net_iov`s.

use kernel::bindings;

/// The size of a binding's `net_iov`s: a page (every TX binding, and an RX
/// binding by default) or the rx-page-size its RX binding was made with.
///
/// # Invariants
///
/// `PAGE_SHIFT <= self.0 <= PAGE_SHIFT + MAX_PAGE_ORDER`: a whole number of
/// pages that a page pool's order can describe.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct NiovSize(u32);

impl NiovSize {
    /// One page.
    // INVARIANT: `PAGE_SHIFT` is in range.
    pub(crate) const PAGE: Self = Self(bindings::PAGE_SHIFT);

    /// The size `1 << shift`, if it is in range.
    pub(crate) fn from_shift(shift: u32) -> Option<Self> {
        let page = bindings::PAGE_SHIFT;
        // INVARIANT: checked here.
        (page..=page + bindings::MAX_PAGE_ORDER)
            .contains(&shift)
            .then_some(Self(shift))
    }

    /// log2 of the size.
    pub(crate) fn shift(self) -> u32 {
        self.0
    }

    /// The size in bytes.
    pub(crate) fn bytes(self) -> usize {
        1 << self.0
    }

    /// The page pool order of buffers of this size.
    pub(crate) fn order(self) -> u32 {
        self.0 - bindings::PAGE_SHIFT
    }

    /// The buffer size the binding asks of its queues: 0 (the device's
    /// default) for a page, else the size.
    pub(crate) fn rx_page_size(self) -> u32 {
        if self == Self::PAGE {
            0
        } else {
            // At most a page block (type invariant), far below 4 GiB.
            1 << self.0
        }
    }
}
