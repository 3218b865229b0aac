//! The allocator our binaries use (feature `mimalloc`): flex allocates and frees large tensor
//! buffers all the time, and the system allocator hands them back to the kernel, which zeroes
//! fresh pages for every new buffer (~15% of a training step in `perf`). mimalloc keeps them.
//!
//! The library does not choose the process allocator; a binary does, with
//! `#[global_allocator] static ALLOCATOR: instruct_ipt::allocator::MiMalloc = instruct_ipt::allocator::MiMalloc;`,
//! and calls [`keep_freed_memory`] first thing in `main`.

/// mimalloc's allocator type, for a binary's `#[global_allocator]`.
pub use mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc.h (v2 and v3 alike).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Never hands freed memory back to the OS. Call it first thing in `main`: training steps and
/// tiles allocate the same buffers again and again, and purging them in between made the small
/// preset's forward pass 2.3x slower (2,325 vs 996 ms,
/// `cargo xtask bench-case --preset small --train --repeats 3`).
pub fn keep_freed_memory() {
    // SAFETY: sets a process-wide allocator option, which mimalloc allows at any time.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
}
