//! `murakami verify`.

use clap::Args;

use crate::DirArg;
use crate::fail::{Code, Failure};

/// (being built)
#[derive(Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub dir: DirArg,
}

pub fn run(args: VerifyArgs) -> Result<Code, Failure> {
    Err(Failure::new(Code::Usage, format!("{}: verify is being built", args.dir.dir.display())))
}
