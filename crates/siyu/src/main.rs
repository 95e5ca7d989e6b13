//! `siyu`: the command line of the customer-operations engine.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = siyu::cli::Cli::parse();
    match siyu::cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
