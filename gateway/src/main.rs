//! `gateway`: parse the subcommand, run it, exit with its code.
#![forbid(unsafe_code)]

use draftstore_gateway::cmd::{cli, events, presign, serve, sweep, upload};
use std::process::ExitCode;

fn main() -> ExitCode {
    let env = |k: &str| std::env::var(k).ok();
    let command = match cli::parse(std::env::args_os()) {
        Ok(command) => command,
        Err(exit) => return exit.report(),
    };
    let result = match command {
        cli::Command::Presign(args) => presign::run(&args, &env).map(|url| println!("{url}")),
        cli::Command::Serve(args) => serve::run(&args, &env),
        cli::Command::Sweep(args) => sweep::run(&args, &env),
        cli::Command::Events(args) => events::run(&args, &env),
        cli::Command::Upload(args) => upload::run(&args, &env),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(exit) => exit.report(),
    }
}
