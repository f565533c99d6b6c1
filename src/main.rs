//! The `pgsafe` command: parses arguments, runs one library operation, renders its report or error, and
//! maps the outcome to a documented exit code. All the work happens in the library.

use std::process::ExitCode;

mod cli;

fn main() -> ExitCode {
    cli::run()
}
