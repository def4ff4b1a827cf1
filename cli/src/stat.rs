//! `murakami stat`.

use clap::Args;

use crate::DirArg;
use crate::fail::{Code, Failure};

/// (being built)
#[derive(Args, Debug)]
pub struct StatArgs {
    #[command(flatten)]
    pub dir: DirArg,
}

pub fn run(args: StatArgs) -> Result<Code, Failure> {
    Err(Failure::new(Code::Usage, format!("{}: stat is being built", args.dir.dir.display())))
}
