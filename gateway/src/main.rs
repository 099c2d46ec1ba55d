//! `gateway`: DraftStore's one binary. Subcommands: `presign` (this issue); `serve` and `sweep`
//! arrive with the server and the sweep job.
#![forbid(unsafe_code)]

mod cli;
mod exit;
mod presign;

use std::process::ExitCode;

fn main() -> ExitCode {
    let command = match cli::parse(std::env::args_os()) {
        Ok(command) => command,
        Err(exit) => return exit.report(),
    };
    let result = match command {
        cli::Command::Presign(args) => presign::run(&args, &|k| std::env::var(k).ok()),
    };
    match result {
        Ok(output) => {
            println!("{output}");
            ExitCode::SUCCESS
        }
        Err(exit) => exit.report(),
    }
}
