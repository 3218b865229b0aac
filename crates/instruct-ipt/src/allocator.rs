//! The allocator our binaries use (feature `mimalloc`): flex allocates and frees large tensor
//! buffers all the time, and the system allocator hands them back to the kernel, which zeroes
//! fresh pages for every new buffer (~15% of a training step in `perf`). mimalloc keeps them.

/// mimalloc for the whole process.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
