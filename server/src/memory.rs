//! The process's allocator, counting: mimalloc underneath, every block's requested size
//! added to a striped tally as it is handed out and taken off as it is freed (the size is
//! in the layout both times, so counting costs no lookup), so `used()` is
//! what the process holds on the heap (keys, values, connection buffers, everything), the
//! figure maxmemory is held to, as Redis holds its own to its allocator's count.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use mimalloc::MiMalloc;
use tessera_sync::Tally;

/// mimalloc, with every block counted.
pub struct CountingAllocator;

static HEAP: Tally = Tally::new();
static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's stripe of `HEAP`, picked at its first allocation.
    static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
}

fn stripe() -> usize {
    // A thread being torn down has lost its locals: it shares stripe 0.
    STRIPE
        .try_with(|stripe| {
            if stripe.get() == usize::MAX {
                stripe.set(NEXT_STRIPE.fetch_add(1, Ordering::Relaxed));
            }
            stripe.get()
        })
        .unwrap_or(0)
}

/// Bytes the process holds on the heap now.
pub fn used() -> usize {
    HEAP.total().max(0) as usize
}

// SAFETY: every call goes to mimalloc with the caller's arguments unchanged; the tally is
// only told the sizes the layouts carry.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as GlobalAlloc::alloc's contract requires.
        let block = unsafe { MiMalloc.alloc(layout) };
        if !block.is_null() {
            HEAP.add(stripe(), layout.size() as isize);
        }
        block
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        let block = unsafe { MiMalloc.alloc_zeroed(layout) };
        if !block.is_null() {
            HEAP.add(stripe(), layout.size() as isize);
        }
        block
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        HEAP.add(stripe(), -(layout.size() as isize));
        // SAFETY: forwarded as GlobalAlloc::dealloc's contract requires.
        unsafe { MiMalloc.dealloc(block, layout) }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as GlobalAlloc::realloc's contract requires.
        let moved = unsafe { MiMalloc.realloc(block, layout, new_size) };
        if !moved.is_null() {
            HEAP.add(stripe(), new_size as isize - layout.size() as isize);
        }
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::used;

    #[test]
    fn the_count_follows_what_is_held() {
        // Other tests allocate meanwhile: the block dwarfs what they hold.
        let before = used();
        let block = vec![7u8; 256 << 20];
        let held = used();
        assert!(held >= before + (192 << 20), "{before} then {held}");
        drop(block);
        assert!(used() < held - (192 << 20));
    }
}
