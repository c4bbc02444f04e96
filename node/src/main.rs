//! `stele`: the Stele node and its command-line tools.

use clap::Parser;

mod cli;

fn main() -> std::process::ExitCode {
    let arguments = cli::Cli::parse();
    match cli::run(arguments) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", cli::describe(&error));
            std::process::ExitCode::FAILURE
        }
    }
}
