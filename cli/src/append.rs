//! `murakami append`.

use clap::Args;

use crate::DirArg;
use crate::fail::{Code, Failure};

/// (being built)
#[derive(Args, Debug)]
pub struct AppendArgs {
    #[command(flatten)]
    pub dir: DirArg,
}

pub fn run(args: AppendArgs) -> Result<Code, Failure> {
    Err(Failure::new(
        Code::Usage,
        format!("{}: append is being built", args.dir.dir.display()),
    ))
}
