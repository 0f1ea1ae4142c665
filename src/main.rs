//! `trailhound`: parse the command line, run, map the result to an exit status
//! (0 ok, 1 findings at or above `--fail-on`, 2 error).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match trailhound::cli::Cli::try_parse() {
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
