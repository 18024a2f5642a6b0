//! The C allocator's settings, made first thing in `main`.
//!
//! glibc's malloc raises its mmap threshold each time a large block is freed (up to 32 MiB).
//! After the first children's outputs (megabytes each) are freed, the next ones come from the
//! heap arenas (one per thread, up to eight per core), and freed there they stay in cove's
//! resident memory, scattered: at 20 workers and 5 MB outputs, about 90 MB more than the
//! outputs in flight (bench W12, `-o json`: 228 MB, and 118 MB with a fixed threshold). A fixed
//! threshold keeps every block over 256 KiB in a mapping of its own, given back to the system
//! the moment it is freed. Other systems' allocators need nothing here.

/// Blocks this size and larger get a mapping of their own.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 256 * 1024;

/// Fixes glibc's mmap threshold (see the module's comment). Call it before other threads start.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn tune() {
    // SAFETY: mallopt only sets one of malloc's parameters; it is called in `main` before any
    // other thread exists. A refusal (0) leaves the default, which is only slower on memory.
    let _ = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) };
}

/// Nothing to tune off glibc.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune() {}
