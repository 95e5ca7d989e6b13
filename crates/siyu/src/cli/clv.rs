//! `siyu clv fit|predict`.

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum ClvCommand {}

pub fn run(_cli: &super::Cli, command: &ClvCommand) -> anyhow::Result<()> {
    match *command {}
}
