//! `murakami`: look inside, check, repair, read and write murakami logs.
//!
//! Each subcommand lives in its own module; `fail` maps every failure to
//! one line and an exit code.

use std::io::{self, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

mod append;
mod dump;
mod fail;
mod progress;
mod records;
mod repair;
mod size;
mod stat;
mod tail;
mod time;
mod verify;

use fail::Code;

/// Look inside, check, repair, read and write murakami logs.
///
/// Exit codes: 0 done (verify: sound), 1 torn tail (verify), 2 damaged log,
/// 3 not a murakami log or unreadable, 4 no such directory, 5 held by a
/// writer, 6 I/O error, 7 bad input, 64 bad arguments.
#[derive(Parser, Debug)]
#[command(name = "murakami", version, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    Stat(stat::StatArgs),
    Verify(verify::VerifyArgs),
    Repair(repair::RepairArgs),
    Dump(dump::DumpArgs),
    Append(append::AppendArgs),
    Tail(tail::TailArgs),
}

/// The log directory every subcommand takes.
#[derive(Args, Debug, Clone)]
pub struct DirArg {
    /// The log's directory.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp
                | clap::error::ErrorKind::DisplayVersion
                | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    Code::Ok as u8
                }
                _ => Code::Usage as u8,
            };
            // clap prints help to stdout and errors to stderr; a closed
            // pipe is no reason to fail.
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        Command::Stat(args) => stat::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Repair(args) => repair::run(args),
        Command::Dump(args) => dump::run(args),
        Command::Append(args) => append::run(args),
        Command::Tail(args) => tail::run(args),
    };
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(failure) => {
            if !failure.message.is_empty() {
                crate::fail::note(format_args!("murakami: {}", failure.message));
            }
            ExitCode::from(failure.code as u8)
        }
    }
}

/// Whether both stdout and stderr are terminals: progress bars are drawn
/// only then, so a pipe or a file never gets them.
pub fn interactive() -> bool {
    io::stdout().is_terminal() && io::stderr().is_terminal()
}
