//! `trailhound`: parse the command line, run, map the result to an exit status
//! (0 ok, 1 findings at or above `--fail-on`, 2 error).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match trailhound::cli::Cli::try_parse_from(arguments()) {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(if error.use_stderr() { trailhound::app::EXIT_ERROR } else { 0 });
        }
    };
    match trailhound::app::run(cli) {
        Ok(status) => ExitCode::from(status),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(trailhound::app::EXIT_ERROR)
        }
    }
}

/// The command line; a binary named `bootstrap` without arguments (the Lambda zip's entry point
/// on the `provided` runtimes) runs `trailhound lambda`.
fn arguments() -> Vec<std::ffi::OsString> {
    let mut arguments: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let bootstrap = arguments
        .first()
        .and_then(|program| std::path::Path::new(program).file_name())
        .is_some_and(|name| name == "bootstrap");
    if bootstrap && arguments.len() == 1 {
        arguments.push("lambda".into());
    }
    arguments
}
