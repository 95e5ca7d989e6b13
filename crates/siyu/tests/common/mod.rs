//! What the end-to-end tests share: running the built `siyu` binary against a database.

use std::path::Path;
use std::process::{Command, Output};

/// Runs `siyu --db DB ARGS…` with no SIYU_* variables from the environment.
pub fn siyu(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_siyu"))
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("SIYU_DB")
        .env_remove("SIYU_TENANT")
        .output()
        .expect("siyu runs")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
