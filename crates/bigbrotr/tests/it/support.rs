//! What the tests of the binary share: the command on a test database, and
//! waiting for, reading and signalling the child process.

use std::io::Read as _;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use bigbrotr_test_support::{workspace_root, TestDb};

/// `bigbrotr` on the shipped implementation `implementation`, reaching the
/// test database `db`, its HTTP endpoint on any free port, logging at info,
/// its egress policy the shipped strict one but for 127.0.0.1, where the
/// test relays run.
pub(crate) fn bigbrotr(db: &TestDb, implementation: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bigbrotr"));
    command
        .arg("--root")
        .arg(workspace_root())
        .args(["-i", implementation])
        .env("DB_NAME", db.name())
        .env("LOG_LEVEL", "info")
        .env("BIGBROTR_RUNTIME__HTTP__LISTEN", "127.0.0.1:0")
        .env("BIGBROTR_EGRESS__ALLOW", "[127.0.0.1/32]")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

pub(crate) async fn scalar(db: &TestDb, sql: &str) -> i64 {
    db.client()
        .await
        .unwrap()
        .query_typed(sql, &[])
        .await
        .unwrap()[0]
        .get(0)
}

/// Waits at most `limit` for `child` to exit; kills it past that.
pub(crate) fn wait_with_limit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Some(status) = child.try_wait().expect("the child can be waited for") {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

pub(crate) fn output(child: &mut Child) -> (String, String) {
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stdout.take() {
        pipe.read_to_string(&mut stdout).unwrap();
    }
    if let Some(mut pipe) = child.stderr.take() {
        pipe.read_to_string(&mut stderr).unwrap();
    }
    (stdout, stderr)
}

pub(crate) fn signal(child: &Child, name: &str) {
    let sent = Command::new("kill")
        .args([format!("-{name}"), child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success(), "kill -{name} failed");
}
