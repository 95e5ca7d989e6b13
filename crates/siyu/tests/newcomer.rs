//! What a newcomer stumbled over on the command line (issue 15): output piped into a
//! reader that stops early, times and widths for people, reports that carry their figures
//! in every format, and the messages people read.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

mod common;

use common::{siyu, text};

/// A database with a small demo shop as of 2026-10-31.
fn demo(dir: &Path, customers: &str) -> std::path::PathBuf {
    let db = dir.join("siyu.db");
    let out = siyu(
        &db,
        &["demo", "--customers", customers, "--until", "2026-10-31"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    db
}

/// Runs `siyu --db DB ARGS…`, reads one line of its output and closes the pipe, as
/// `siyu … | head -1` does; returns the line, the exit status and what went to stderr.
fn first_line_then_close(db: &Path, args: &[&str]) -> (String, std::process::ExitStatus, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_siyu"))
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("SIYU_DB")
        .env_remove("SIYU_TENANT")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("siyu runs");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut first = Vec::new();
    let mut byte = [0u8; 1];
    while stdout.read(&mut byte).expect("read") == 1 && byte[0] != b'\n' {
        first.push(byte[0]);
    }
    drop(stdout);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("stderr");
    let status = child.wait().expect("wait");
    (text(&first), status, stderr)
}

#[test]
fn output_piped_into_a_reader_that_stops_early_ends_quietly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = demo(dir.path(), "3000");
    for args in [
        &["lifecycle", "--as-of", "2026-10-31", "--format", "csv"][..],
        &["lifecycle", "--as-of", "2026-10-31", "--format", "json"][..],
        &["rfm", "--as-of", "2026-10-31", "--format", "csv"][..],
    ] {
        let (line, status, stderr) = first_line_then_close(&db, args);
        assert!(!line.is_empty(), "{args:?}");
        assert_eq!(stderr, "", "{args:?}: nothing on stderr");
        assert!(
            status.success() || status.code() == Some(141),
            "{args:?}: {status}"
        );
    }
}
