//! `pgsafe demo`, the README's first command, as a new user runs it: it starts its own throwaway
//! cluster from the installed server binaries, and must end with the copy identical and the cluster gone.

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
