//! `pgsafe inspect` on the test vectors, run as a user would: output snapshots, errors and exit codes.

use std::process::{Command, Stdio};

fn pgsafe() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgsafe"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR")).env("NO_COLOR", "1");
    cmd
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().expect("running pgsafe");
    (
        out.status.code().expect("pgsafe exited normally"),
        String::from_utf8(out.stdout).expect("utf-8 stdout"),
        String::from_utf8(out.stderr).expect("utf-8 stderr"),
    )
}

const VALID: &str = "format-spec/test-vectors/valid-two-tables.pgsafe";

#[test]
fn inspect_shows_what_an_archive_holds() {
    let (code, stdout, stderr) = run(pgsafe().args(["inspect", "--chunks", VALID]));
    assert_eq!((code, stderr.as_str()), (0, ""));
    insta::assert_snapshot!(stdout);
}

#[test]
fn inspect_json_is_machine_readable() {
    let (code, stdout, _) = run(pgsafe().args(["inspect", "--json", VALID]));
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("inspect --json prints JSON");
    assert_eq!(v["format_version"], "1.0");
    assert_eq!(v["totals"]["rows"], 10);
    assert_eq!(v["tables"][0]["table"], "\"Odd Schema\".\"Ünïcode\"");
    assert_eq!(v["parts"][0]["chunks"].as_array().map(Vec::len), Some(3));
}

#[test]
fn inspect_reads_an_archive_from_standard_input() {
    let file = std::fs::File::open(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(VALID)).unwrap();
    let (code, piped, _) = run(pgsafe().args(["inspect", "-"]).stdin(Stdio::from(file)));
    let (_, direct, _) = run(pgsafe().args(["inspect", VALID]));
    assert_eq!(code, 0);
    assert_eq!(piped.replacen("standard input", VALID, 1), direct);
}

#[test]
fn inspect_names_the_frame_and_offset_of_a_corruption_and_exits_2() {
    let (code, stdout, stderr) =
        run(pgsafe().args(["inspect", "format-spec/test-vectors/flipped-payload-byte.pgsafe"]));
    assert_eq!(code, 2);
    assert_eq!(stdout, "");
    assert_eq!(
        stderr,
        "error: `format-spec/test-vectors/flipped-payload-byte.pgsafe`: chunk 1 of part 0 (`public.accounts`) at offset 719: payload checksum mismatch (stored 81c63904, computed 8073c419)\n"
    );
}

#[test]
fn inspect_fails_on_every_invalid_vector_with_exit_2() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("format-spec/test-vectors");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.ends_with(".pgsafe") || name.starts_with("valid-") {
            continue;
        }
        let (code, _, stderr) = run(pgsafe().arg("inspect").arg(&path));
        assert_eq!(code, 2, "{name}: {stderr}");
        assert!(stderr.starts_with("error: "), "{name}: {stderr}");
        assert!(
            stderr.contains("offset") || stderr.contains("not supported") || stderr.contains("not a pgsafe"),
            "{name}: {stderr}"
        );
        checked += 1;
    }
    assert!(checked >= 12, "only {checked} invalid vectors found");
}

#[test]
fn a_newer_format_gets_a_hint() {
    let (code, _, stderr) = run(pgsafe().args(["inspect", "format-spec/test-vectors/unknown-major-version.pgsafe"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("archive format version 2.0 is not supported"), "{stderr}");
    assert!(stderr.contains("\nhint: this archive was written by a newer pgsafe"), "{stderr}");
}

#[test]
fn verify_reports_every_invalid_vector_and_passes_every_valid_one() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("format-spec/test-vectors");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.ends_with(".pgsafe") {
            continue;
        }
        let (code, stdout, stderr) = run(pgsafe().arg("verify").arg(&path));
        let expected = if name.starts_with("valid-") {
            0
        } else if name == "unknown-major-version.pgsafe" {
            2 // not damage: an archive this pgsafe cannot read
        } else {
            1
        };
        assert_eq!(code, expected, "{name}: {stdout}{stderr}");
        if expected == 1 {
            let located = stdout.contains("offset") || stdout.contains("not a pgsafe archive");
            assert!(stdout.contains("is damaged") && located, "{name}: {stdout}");
        }
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} vectors found");
}
