//! The `gitgate` binary: parse the command line, run the verb, map the outcome to an exit code.

use std::process::ExitCode;

fn main() -> ExitCode {
    gitgate::cli::main()
}
