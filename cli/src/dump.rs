//! `murakami dump`.

use clap::Args;

use crate::DirArg;
use crate::fail::{Code, Failure};

/// (being built)
#[derive(Args, Debug)]
pub struct DumpArgs {
    #[command(flatten)]
    pub dir: DirArg,
}

pub fn run(args: DumpArgs) -> Result<Code, Failure> {
    Err(Failure::new(
        Code::Usage,
        format!("{}: dump is being built", args.dir.dir.display()),
    ))
}
