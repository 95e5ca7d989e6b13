//! What the end-to-end tests share: running the built `siyu` binary against a database,
//! and a fresh tenant on the PostgreSQL test server. (Each test file uses some of it.)

pub mod api;

use std::path::Path;
use std::process::{Command, Output};

/// Runs `siyu --db DB ARGS…` with no SIYU_* variables from the environment.
#[allow(dead_code)]
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

#[allow(dead_code)]
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The PostgreSQL test server (`SIYU_TEST_POSTGRES`) and a tenant no other test run uses,
/// or none when the variable is not set.
#[allow(dead_code)]
pub fn postgres_tenant(prefix: &str) -> Option<(Box<dyn siyu_store::Store>, siyu_store::Tenant)> {
    let url = std::env::var("SIYU_TEST_POSTGRES").ok()?;
    let mut store = siyu_store::open(&url).expect("postgres");
    let name = format!(
        "{prefix}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    );
    let tenant = store.tenant(&name).expect("tenant");
    Some((store, tenant))
}

/// The address `siyu serve` says it listens on (its first line on standard output), and
/// that line.
#[allow(dead_code)]
pub fn listening_address(child: &mut std::process::Child) -> (String, String) {
    use std::io::BufRead;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the address line");
    let addr = line
        .trim()
        .rsplit("http://")
        .next()
        .expect("address")
        .to_owned();
    (addr, line)
}

/// Starts `siyu serve` on port 0 against `db`: the child (kill it when done) and the
/// address it listens on.
#[allow(dead_code)]
pub fn serve(db: &Path) -> (std::process::Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_siyu"))
        .arg("--db")
        .arg(db)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env_remove("SIYU_DB")
        .env_remove("SIYU_TENANT")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("siyu serve");
    let (addr, _) = listening_address(&mut child);
    (child, addr)
}

/// Runs the Python `script` (with `python`, from `dir`) against `siyu serve` on `db`,
/// giving it the server's address turned into its arguments by `args`; the script's
/// standard output, trimmed, once it succeeded (the server stopped either way).
#[allow(dead_code)]
pub fn python_against_server(
    python: &str,
    dir: &Path,
    db: &Path,
    script: &str,
    args: impl FnOnce(&str) -> Vec<String>,
) -> String {
    let (mut server, addr) = serve(db);
    let path = dir.join("script.py");
    std::fs::write(&path, script).expect("script");
    let run = Command::new(python)
        .arg(&path)
        .args(args(&addr))
        .output()
        .expect("python runs");
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        run.status.success(),
        "{}\n{}",
        text(&run.stdout),
        text(&run.stderr)
    );
    text(&run.stdout).trim().to_owned()
}
