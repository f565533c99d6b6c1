//! The integration tests' PostgreSQL: one throwaway cluster per test process, one database per test.
//!
//! [`cluster()`] starts the cluster the first time any test asks for it (or, when
//! `PGSAFE_TEST_DATABASE_URL` is set, uses that server instead) and shares it with every test
//! in the process. [`TestDb::new`] creates a fresh, uniquely named database on it and drops the
//! database again when the value is dropped. Both work from plain `#[test]` and `#[tokio::test]`
//! functions: starting the cluster and creating or dropping a database block the calling thread
//! and never need the caller's runtime.
//!
//! The cluster is `pgsafe::cluster`'s, the same as `pgsafe demo` runs in: binaries from
//! `PGSAFE_PG_BIN`, `pg_config --bindir`, the newest `/usr/lib/postgresql/*/bin`, then `PATH`; stopped
//! and its folder removed when the test process exits, whether the tests passed, failed or were killed.

// Each test module uses a different part of this API; an unused helper is not a mistake.
#![allow(dead_code)]

mod cluster;
mod test_db;

// Not every test module needs both.
#[allow(unused_imports)]
pub use cluster::{Cluster, cluster};
// A server of a test's own, for password logins and TLS.
pub use cluster::{PrivateCluster, PrivateClusterOptions, start_private};
pub use test_db::TestDb;

/// Whether this runs in CI (`CI=true`, as CI services and `.ci/run` set it), where every test must run.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Says that test `test` cannot run here and why: a failure under `CI=true`, where a test that does not
/// run must not pass; elsewhere a note on stderr, and the caller returns.
pub fn cannot_run(test: &str, why: &str) {
    assert!(!in_ci(), "{test} cannot run: {why} (under CI=true every test must run)");
    eprintln!("{test}: not run: {why}");
}
