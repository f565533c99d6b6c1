//! `pgsafe demo`, the README's first command, as a new user runs it: it starts its own throwaway
//! cluster from the installed server binaries, and must end with the copy identical and the cluster gone.

use crate::dump_restore::{pgsafe, run};

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
