//! The server's state per pool socket, in memory the caller gives.

use managed::ManagedSlice;

use crate::connection::Slot;
use crate::service::Service;

/// One pool socket's place in a [`Server`](crate::Server): the server's
/// state for that socket (its handle, role and counts) and its service
/// session. Opaque; the caller only provides the memory, as it provides
/// smoltcp's `SocketStorage` entries, one per pool socket:
///
/// - on a board, a `static` array, `[SlotStorage::EMPTY; N]`;
/// - on a host, a `Vec` (`vec.into()`), sized at run time.
///
/// [`SlotStorage::SIZE`] bytes each (the server's
/// [`SLOT_SIZE`](crate::Server::SLOT_SIZE)).
pub struct SlotStorage<S: Service> {
    inner: Option<Entry<S>>,
}

/// A filled [`SlotStorage`]: what the server keeps per socket.
pub(crate) struct Entry<S: Service> {
    pub(crate) slot: Slot,
    pub(crate) session: S::Session,
}

impl<S: Service> SlotStorage<S> {
    /// An empty entry, for arrays and statics: `[SlotStorage::EMPTY; N]`.
    pub const EMPTY: Self = SlotStorage { inner: None };

    /// Bytes of one entry.
    pub const SIZE: usize = core::mem::size_of::<Self>();

    /// Fill the entry for pool socket `slot`, with a fresh session.
    pub(crate) fn fill(&mut self, slot: Slot) {
        self.inner = Some(Entry {
            slot,
            session: S::Session::default(),
        });
    }

    /// What the entry holds, once filled.
    pub(crate) fn entry_mut(&mut self) -> Option<&mut Entry<S>> {
        self.inner.as_mut()
    }

    /// The slot, once filled.
    pub(crate) fn slot(&self) -> Option<&Slot> {
        self.inner.as_ref().map(|e| &e.slot)
    }

    /// The slot, once filled.
    pub(crate) fn slot_mut(&mut self) -> Option<&mut Slot> {
        self.inner.as_mut().map(|e| &mut e.slot)
    }
}

impl<S: Service> Default for SlotStorage<S> {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl<S: Service> core::fmt::Debug for SlotStorage<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SlotStorage")
            .field("slot", &self.slot())
            .finish_non_exhaustive()
    }
}

/// The pool's slots, indexed as the pool is, whatever the service: what
/// admission walks, the same code for every service and pool size.
pub(crate) trait Slots {
    /// Slots in the pool.
    fn count(&self) -> usize;
    /// Slot `i`.
    fn at(&self, i: usize) -> Option<&Slot>;
    /// Slot `i`.
    fn at_mut(&mut self, i: usize) -> Option<&mut Slot>;
    /// Fill entry `i` with `slot` and a fresh session.
    fn fill(&mut self, i: usize, slot: Slot);
    /// Call `f` with each of the first `n` slots and its index, in pool
    /// order: one dynamic call per pass over the pool, not one per slot.
    fn for_each_mut(&mut self, n: usize, f: &mut dyn FnMut(usize, &mut Slot));
}

impl<S: Service> Slots for Storage<'_, S> {
    fn count(&self) -> usize {
        self.len()
    }

    fn at(&self, i: usize) -> Option<&Slot> {
        self.get(i).and_then(SlotStorage::slot)
    }

    fn at_mut(&mut self, i: usize) -> Option<&mut Slot> {
        self.get_mut(i).and_then(SlotStorage::slot_mut)
    }

    fn fill(&mut self, i: usize, slot: Slot) {
        if let Some(entry) = self.get_mut(i) {
            entry.fill(slot);
        }
    }

    fn for_each_mut(&mut self, n: usize, f: &mut dyn FnMut(usize, &mut Slot)) {
        for (i, entry) in self.iter_mut().take(n).enumerate() {
            if let Some(slot) = entry.slot_mut() {
                f(i, slot);
            }
        }
    }
}

impl dyn Slots + '_ {
    /// Every slot, in pool order (the server fills every entry when it is
    /// made, so the `n`th is slot `n`).
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Slot> + '_ {
        (0..self.count()).filter_map(move |i| self.at(i))
    }
}

/// Storage for the slots, borrowed (a slice) or owned (a `Vec`, where
/// `managed` has `alloc`).
pub(crate) type Storage<'a, S> = ManagedSlice<'a, SlotStorage<S>>;
