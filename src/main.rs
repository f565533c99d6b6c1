//! The `pgsafe` command: parses arguments, runs one library operation, renders its report or error, and
//! maps the outcome to a documented exit code. All the work happens in the library.

use std::process::ExitCode;

mod cli;

fn main() -> ExitCode {
    bound_the_heap();
    cli::run()
}

/// One malloc arena for every thread. Decoded chunks are made on one thread and freed on another; with
/// glibc's arena per thread they stayed in the arena that made them, and a restore at `-j 2` of the
/// benchmark's data held 127 MB of RSS for a heap whose live peak was 51 MB (valgrind's massif). Mapping
/// each block of 1 MiB or more on its own, the fix before this one, bounded that but made every chunk
/// fault its pages in anew: `pgsafe verify` spent more time in the kernel than decoding. With one arena,
/// freed chunks serve the next on any thread (README, "Performance": the measurements). Threads keep
/// their own caches of small blocks, so they seldom wait on the arena's lock.
fn bound_the_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: mallopt only sets a parameter of the allocator; it runs before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}
