//! The throwaway cluster works: tests reach a real server, and each gets a database nobody else touches;
//! `pgsafe cluster start` hands one to a script, and a cluster never outlives what it belongs to.

use std::io::BufRead as _;
use std::io::BufReader;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::dump_restore::{pgsafe, run};
use crate::support::TestDb;

#[tokio::test]
async fn a_test_database_answers_queries_through_the_driver_and_psql() {
    let db = TestDb::new("answers_queries");
    let client = db.connect().await;

    let row = client
        .query_one("SELECT version(), current_setting('server_version_num')::int, current_database()", &[])
        .await
        .expect("query the server version");
    let version: String = row.get(0);
    let version_num: i32 = row.get(1);
    let database: String = row.get(2);
    assert!(version.starts_with("PostgreSQL "), "unexpected version() {version:?}");
    assert!(version_num >= 90_600, "server_version_num {version_num} is implausible");
    assert_eq!(database, db.name());

    // psql must reach the same server and database as the driver.
    let from_psql = db.psql("SELECT current_setting('server_version_num'), current_database();");
    assert_eq!(from_psql, format!("{version_num}|{}\n", db.name()));
}

#[test]
fn each_test_database_starts_empty_and_is_dropped_afterwards() {
    let first = TestDb::new("fresh");
    let second = TestDb::new("fresh");
    assert_ne!(first.name(), second.name());

    first.psql("CREATE TABLE only_in_first (id int); INSERT INTO only_in_first VALUES (1);");
    assert_eq!(first.psql("SELECT count(*) FROM only_in_first;"), "1\n");
    assert_eq!(
        second.psql("SELECT count(*) FROM pg_class WHERE relname = 'only_in_first';"),
        "0\n",
        "a table made in one test database showed up in another"
    );

    let first_name = first.name().to_owned();
    drop(first);
    let exists = format!("SELECT count(*) FROM pg_database WHERE datname = '{first_name}';");
    assert_eq!(second.psql(&exists), "0\n", "`{first_name}` outlived its TestDb");
}

/// A folder the server's OS user can enter (tempfile's are 0700, and as root the server runs as
/// `postgres`), for a cluster folder inside it.
fn reachable_tempdir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("pgsafe-it-cluster-").tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// Waits up to `seconds` for `path` to disappear.
fn gone_within(path: &Path, seconds: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < deadline {
        if !path.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn cluster_start_prints_settings_a_shell_can_use_and_stop_removes_the_folder() {
    let parent = reachable_tempdir();
    let dir = parent.path().join("c");
    let (code, stdout, stderr) =
        run(pgsafe().args(["cluster", "start", "--set", "work_mem=7MB", "--set", "search_path=it's"]).arg(&dir));
    assert_eq!(code, 0, "{stderr}");
    let script = format!(
        "{stdout}\n\"$PGSAFE_CLUSTER_BIN/psql\" -XAt -c 'SHOW work_mem' -c 'SHOW search_path' && \
         \"$PGSAFE_CLUSTER_BIN/psql\" -XAt \"$DATABASE_URL\" -c 'SELECT current_user'"
    );
    let out = Command::new("sh").arg("-c").arg(&script).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "7MB\nit's\npostgres\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Named relative to the working folder, as a shell user names it.
    let (code, _, stderr) = run(pgsafe().current_dir(parent.path()).args(["cluster", "stop", "c"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(!dir.exists(), "`pgsafe cluster stop` leaves {}", dir.display());
}

#[test]
fn a_started_cluster_goes_away_when_the_process_it_stops_with_is_killed() {
    let parent = reachable_tempdir();
    let dir = parent.path().join("c");
    let mut owner = Command::new("sleep").arg("600").spawn().unwrap();
    let (code, stdout, stderr) =
        run(pgsafe().args(["cluster", "start", "--json", "--stop-with", &owner.id().to_string()]).arg(&dir));
    assert_eq!(code, 0, "{stderr}");
    let settings: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(settings["dir"], dir.canonicalize().unwrap().display().to_string());
    assert!(dir.join("data").is_dir());
    // Killed, so nothing of the owner's runs: only the watchdog can clean up, within about a second.
    owner.kill().unwrap();
    owner.wait().unwrap();
    assert!(gone_within(&dir, 15), "the cluster in {} outlived the process it stops with", dir.display());
}

/// `eval "$(pgsafe cluster start DIR 2>/dev/null)"`: the redirection makes the shell run pgsafe in a
/// subshell, which ends once pgsafe has printed. The cluster lives as long as the shell that reads the
/// output, not the subshell (before, it stopped within a second, before the script could use it).
#[test]
fn a_cluster_started_in_a_subshell_lives_as_long_as_the_shell_that_reads_its_settings() {
    let parent = reachable_tempdir();
    let dir = parent.path().join("c");
    let script = format!(
        "eval \"$('{}' cluster start '{}' 2>/dev/null)\" && sleep 3 && \"$PGSAFE_CLUSTER_BIN/psql\" -XAt -c 'SELECT 42'",
        env!("CARGO_BIN_EXE_pgsafe"),
        dir.display()
    );
    for shell in ["bash", "sh"] {
        let out = Command::new(shell).arg("-c").arg(&script).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "42\n", "{shell}: {}", String::from_utf8_lossy(&out.stderr));
        // The shell ended: so does the cluster.
        assert!(gone_within(&dir, 15), "{shell}: the cluster in {} outlived its shell", dir.display());
    }
    // A script whose output a harness captures (this test, a CI agent): the script is watched, not the
    // harness that reads the pipe.
    let script =
        format!("'{}' cluster start '{}' || exit 1; echo started", env!("CARGO_BIN_EXE_pgsafe"), dir.display());
    let out = Command::new("bash").arg("-c").arg(&script).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).ends_with("started\n"), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(gone_within(&dir, 15), "the cluster in {} outlived the script, watching its harness", dir.display());
}

#[test]
fn cluster_start_refuses_a_folder_in_use_and_stop_a_folder_without_a_cluster() {
    let parent = reachable_tempdir();
    std::fs::write(parent.path().join("precious"), "keep me").unwrap();
    let (code, _, stderr) = run(pgsafe().args(["cluster", "start"]).arg(parent.path()));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("is not empty"), "{stderr}");
    let (code, _, stderr) = run(pgsafe().args(["cluster", "stop"]).arg(parent.path()));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("holds no cluster"), "{stderr}");
    assert_eq!(std::fs::read_to_string(parent.path().join("precious")).unwrap(), "keep me");
}

/// `pgsafe demo` holds its cluster in-process (`Lifetime::ThisProcess`); killed with SIGKILL, it runs
/// no destructor, and the watchdog alone must stop the server and remove the folder.
#[test]
fn a_killed_demo_leaves_no_cluster_behind() {
    let mut demo = pgsafe().args(["demo", "--rows", "5000000"]).stderr(Stdio::piped()).spawn().unwrap();
    let mut stderr = BufReader::new(demo.stderr.take().unwrap());
    let mut seen = String::new();
    let folder = loop {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap() == 0 {
            panic!("the demo ended before naming its cluster:\n{seen}");
        }
        seen.push_str(&line);
        if let Some(word) = line.split_whitespace().find(|w| w.contains("pgsafe-cluster-")) {
            break PathBuf::from(word.trim_end_matches(','));
        }
    };
    // Loading five million rows takes far longer than this.
    std::thread::sleep(Duration::from_millis(500));
    assert!(folder.join("data").is_dir(), "{seen}");
    demo.kill().unwrap();
    demo.wait().unwrap();
    assert!(gone_within(&folder, 15), "the killed demo left {}", folder.display());
}
