//! The `bigbrotr` command: parses the command line and hands over to the library.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = bigbrotr::Cli::parse();
    match bigbrotr::run(&cli, &mut std::io::stdout()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line with the whole cause chain.
            eprintln!("bigbrotr: {error:#}");
            if bigbrotr::is_interrupted(&error) {
                // A second signal: no destructor, no waiting.
                std::process::exit(130);
            }
            ExitCode::FAILURE
        }
    }
}
