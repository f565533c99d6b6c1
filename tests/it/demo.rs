//! `pgsafe demo`, the README's first command, as a new user runs it: it starts its own throwaway
//! cluster from the installed server binaries, and must end with the copy identical and the cluster gone.

use std::os::unix::fs::PermissionsExt as _;

use crate::dump_restore::{pgsafe, run};
use crate::support::TestDb;

#[test]
fn the_demo_runs_from_start_to_end_and_cleans_up() {
    let (code, stdout, stderr) = run(pgsafe().args(["demo", "--rows", "2000"]));
    let out = format!("{stdout}{stderr}");
    assert_eq!(code, 0, "{out}");
    for step in ["pgsafe dump", "pgsafe verify", "sound:", "verified 3 tables", "identical (", "pg_restore -j 2"] {
        assert!(out.contains(step), "`{step}` missing from the demo's output:\n{out}");
    }
    // The cluster's folder, named in the first lines, is gone.
    let folder = out
        .split_whitespace()
        .find(|w| w.contains("pgsafe-cluster-"))
        .map(|w| w.trim_end_matches(',').to_string())
        .unwrap_or_else(|| panic!("the demo names its cluster's folder:\n{out}"));
    assert!(!std::path::Path::new(&folder).exists(), "{folder} is left behind");
}

/// The sample data `pgsafe demo` loads, with `rows` order rows, rendered as the demo renders it.
fn sample_sql(rows: u64) -> String {
    include_str!("../../src/cli/demo.sql").replace("ORDERS", &rows.to_string())
}

/// The README's first command stopped at once for every new user: the sample's default million order
/// rows computed `i * 7919` in `integer`, which overflows past 271,199 rows, and the test above loads
/// 2,000. 275,000 rows are past that and load in a few seconds.
#[test]
fn the_sample_data_loads_past_the_old_integer_overflow() {
    let db = TestDb::new("demo_sample_overflow");
    db.psql(&sample_sql(275_000));
    let counts = db.psql(
        "SELECT (SELECT count(*) FROM shop.orders), (SELECT count(*) FROM shop.customer),
                (SELECT count(DISTINCT customer_id) FROM shop.orders)",
    );
    // Every customer has orders: the ids are scattered over all of them, not bunched.
    assert_eq!(counts, "275000|27500|27500\n");
}

/// The demo compared `pg_dump --schema-only` of the source and the copy without looking at pg_dump's exit
/// status: a pg_dump that failed printed nothing for either, the demo said "identical (0 lines)" and
/// passed, and so would CI. A schema that differed was printed and passed too.
#[test]
fn a_schema_comparison_that_cannot_run_fails_the_demo() {
    let real = pgsafe::cluster::find_bin(&["initdb", "pg_ctl", "postgres", "pg_dump", "pg_restore"]).unwrap();
    let bin = tempfile::Builder::new().prefix("pgsafe-it-bin-").tempdir().unwrap();
    // Reachable by the OS user `postgres`, which runs the server when the tests run as root.
    std::fs::set_permissions(bin.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    for program in ["initdb", "pg_ctl", "postgres", "pg_restore"] {
        std::os::unix::fs::symlink(real.join(program), bin.path().join(program)).unwrap();
    }
    let pg_dump = bin.path().join("pg_dump");
    std::fs::write(
        &pg_dump,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = --schema-only ] && {{ echo 'made to fail' >&2; exit 1; }}; done\n\
             exec '{}' \"$@\"\n",
            real.join("pg_dump").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&pg_dump, std::fs::Permissions::from_mode(0o755)).unwrap();

    let (code, stdout, stderr) =
        run(pgsafe().args(["demo", "--rows", "100"]).env(pgsafe::cluster::PG_BIN_ENV, bin.path()));
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stderr.contains("`pg_dump --schema-only` of `demo` failed: made to fail"), "{stderr}");
}
