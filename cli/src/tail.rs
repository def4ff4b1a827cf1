//! `murakami tail`.

use clap::Args;

use crate::DirArg;
use crate::fail::{Code, Failure};

/// (being built)
#[derive(Args, Debug)]
pub struct TailArgs {
    #[command(flatten)]
    pub dir: DirArg,
}

pub fn run(args: TailArgs) -> Result<Code, Failure> {
    Err(Failure::new(
        Code::Usage,
        format!("{}: tail is being built", args.dir.dir.display()),
    ))
}
