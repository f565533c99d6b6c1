//! The `pgsafe` command: parses arguments, runs one library operation, renders its report or error, and
//! maps the outcome to a documented exit code. All the work happens in the library.

use std::process::ExitCode;

mod cli;

fn main() -> ExitCode {
    bound_the_heap();
    cli::run()
}

/// Blocks of 1 MiB and more (decoded chunks, their compressed frames) are mapped and unmapped one by one.
/// glibc's malloc starts so, but raises that threshold to the size of the first such block freed, after
/// which the chunks, made on one thread and freed on another, stayed in its per-thread arenas: a restore
/// at `-j 2` of the benchmark's data held 127 MB of RSS for a heap whose live peak was 51 MB (valgrind's
/// massif), 70 MB with the threshold fixed, for 0.6 s more system time in 12 s (README, "Performance").
/// mimalloc, tried instead, peaked higher (120 MB, 227 MB with columnar chunks).
fn bound_the_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: mallopt only sets a parameter of the allocator; it runs before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}
