//! `murakami repair`.

use clap::Args;

use crate::DirArg;
use crate::fail::{Code, Failure};

/// (being built)
#[derive(Args, Debug)]
pub struct RepairArgs {
    #[command(flatten)]
    pub dir: DirArg,
}

pub fn run(args: RepairArgs) -> Result<Code, Failure> {
    Err(Failure::new(Code::Usage, format!("{}: repair is being built", args.dir.dir.display())))
}
