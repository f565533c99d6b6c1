//! Encrypted archives as a user meets them: `dump --encrypt-to` writes an archive in which no row, table
//! name or DDL can be read; `restore --identity` brings the database back identical, from a file and
//! from a pipe; without the identity `verify` checks the structure and exits 2, `inspect` says what the
//! archive is encrypted to; a wrong identity, a flipped byte and a swapped chunk are refused.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use age::secrecy::ExposeSecret;
use pgsafe::format::{ArchiveIndex, FrameHeader, Keyring};

use crate::dump_restore::{fingerprint, pgsafe, run, run_ok};
use crate::rollback::compare_dbs;
use crate::support::TestDb;

const CANARY: &str = "plaintext-canary-7f3a";

const SCHEMA: &str = r#"
CREATE TABLE confidential_ledger (id int PRIMARY KEY, owner text NOT NULL, note text);
CREATE INDEX confidential_ledger_owner ON confidential_ledger (owner);
INSERT INTO confidential_ledger SELECT i, 'owner ' || (i % 17), md5(i::text) || repeat('x', i % 50)
  FROM generate_series(1, 3000) i;
INSERT INTO confidential_ledger VALUES (0, 'plaintext-canary-7f3a', 'the row no one may read');
CREATE TABLE other_things (k text PRIMARY KEY, v jsonb);
INSERT INTO other_things SELECT 'k' || i, jsonb_build_object('i', i) FROM generate_series(1, 200) i;
"#;

/// An identity written to `dir`, and its public key.
pub(crate) fn identity(dir: &Path, name: &str) -> (PathBuf, String, age::x25519::Identity) {
    let id = age::x25519::Identity::generate();
    let path = dir.join(name);
    std::fs::write(&path, format!("# a test identity\n{}\n", id.to_string().expose_secret())).unwrap();
    (path, id.to_public().to_string(), id)
}

/// A database with the fixture, an encrypted archive of it in small chunks, and the identity that
/// reads it (the archive is also encrypted to a second recipient, given in a recipients file).
fn encrypted_dump(hint: &str) -> (TestDb, tempfile::TempDir, PathBuf, PathBuf, age::x25519::Identity) {
    let db = TestDb::new(hint);
    db.psql(SCHEMA);
    let dir = tempfile::tempdir().unwrap();
    let (id_path, public, id) = identity(dir.path(), "me.txt");
    let (_, colleague, _) = identity(dir.path(), "colleague.txt");
    let recipients = dir.path().join("recipients.txt");
    std::fs::write(&recipients, format!("# the team\n\n{colleague}\n")).unwrap();
    let archive = dir.path().join("db.pgsafe");
    run_ok(
        pgsafe()
            .args(["dump", "-q", "--chunk-size", "16", "-d", &db.conn_string(), "--encrypt-to", &public])
            .arg("--encrypt-to-file")
            .arg(&recipients)
            .arg("-f")
            .arg(&archive),
    );
    (db, dir, archive, id_path, id)
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn an_encrypted_dump_restores_identical_and_shows_nothing_without_the_identity() {
    let (db, dir, archive, id_path, _) = encrypted_dump("enc_round_trip");
    let bytes = std::fs::read(&archive).unwrap();
    for needle in [CANARY, "confidential_ledger", "CREATE TABLE", "CREATE INDEX", "owner 3", "other_things", "rows"] {
        assert!(!contains(&bytes, needle), "`{needle}` is readable in the encrypted archive");
    }
    // The same dump without encryption holds them all: the needles are the right ones.
    let plain = dir.path().join("plain.pgsafe");
    run_ok(pgsafe().args(["dump", "-q", "-Z", "0", "-d", &db.conn_string(), "-f"]).arg(&plain));
    let plain = std::fs::read(&plain).unwrap();
    assert!(contains(&plain, CANARY) && contains(&plain, "confidential_ledger") && contains(&plain, "CREATE INDEX"));
    assert_eq!(&plain[8..12], &[1, 0, 0, 0], "a plain archive is format 1.0");
    // Encryption is format 1.1; the default columnar chunks make it 1.2, which holds 1.1.
    assert_eq!(&bytes[8..16], &[1, 0, 2, 0, 1, 0, 0, 0], "an encrypted columnar archive: format 1.2, flag 0 set");

    // Without the identity: the structure is checked, then exit 2 saying what is missing.
    let (code, stdout, stderr) = run(pgsafe().arg("verify").arg(&archive).env_remove("PGSAFE_IDENTITY"));
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stderr.contains("the structure is sound"), "{stderr}");
    assert!(stderr.contains("encrypted to 2 recipients (X25519)"), "{stderr}");
    assert!(stderr.contains(&archive.display().to_string()), "{stderr}");
    assert!(stderr.contains("--identity"), "{stderr}");
    // From a pipe too: the same check, and a flipped byte is damage (exit 1), not hidden behind the key.
    let piped = |archive: &std::path::Path| {
        run(pgsafe().args(["verify", "-"]).env_remove("PGSAFE_IDENTITY").stdin(std::fs::File::open(archive).unwrap()))
    };
    let (code, stdout, stderr) = piped(&archive);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stderr.contains("the structure is sound") && stderr.contains("standard input"), "{stderr}");
    let mut damaged = bytes.clone();
    let at = damaged.len() / 2;
    damaged[at] ^= 0x20;
    let damaged_path = dir.path().join("damaged.pgsafe");
    std::fs::write(&damaged_path, &damaged).unwrap();
    let (code, stdout, stderr) = piped(&damaged_path);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains("is damaged") && stdout.contains("checksum mismatch"), "{stdout}");
    let (code, _, stderr) = run(pgsafe().arg("inspect").arg(&archive).env_remove("PGSAFE_IDENTITY"));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!("is an encrypted archive (format 1.{})", pgsafe::format::FORMAT_MINOR))
            && stderr.contains("2 recipients (X25519)"),
        "{stderr}"
    );

    // With it: sound, and inspect tells what it is encrypted to.
    let out = run_ok(pgsafe().arg("verify").arg("--identity").arg(&id_path).arg(&archive));
    assert!(out.starts_with("sound: "), "{out}");
    let out = run_ok(pgsafe().arg("inspect").arg(&archive).env("PGSAFE_IDENTITY", &id_path));
    assert!(out.contains("encrypted to 2 recipients (X25519)") && out.contains("public.confidential_ledger"), "{out}");
    let out = run_ok(
        pgsafe().args(["verify", "-"]).env("PGSAFE_IDENTITY", &id_path).stdin(std::fs::File::open(&archive).unwrap()),
    );
    assert!(out.starts_with("sound: "), "from a pipe: {out}");

    // A whole restore, with the identity from the environment, comes back identical.
    let copy = TestDb::new("enc_round_trip_copy");
    run_ok(pgsafe().args(["restore", "-q", "-d", &copy.conn_string()]).arg(&archive).env("PGSAFE_IDENTITY", &id_path));
    let (same, diff) = compare_dbs(db.name(), copy.name());
    assert!(same, "the restored database differs:\n{diff}");

    // And from a pipe.
    let piped = TestDb::new("enc_round_trip_pipe");
    let mut child = pgsafe()
        .args(["restore", "-q", "-d", &piped.conn_string(), "--identity"])
        .arg(&id_path)
        .arg("-")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for table in ["confidential_ledger", "other_things"] {
        assert_eq!(fingerprint(&piped, table), fingerprint(&db, table), "{table}");
    }
}

#[test]
fn without_the_right_identity_nothing_is_restored() {
    let (_db, dir, archive, _, _) = encrypted_dump("enc_refusals");
    let target = TestDb::new("enc_refusals_target");

    let (code, _, stderr) =
        run(pgsafe().args(["restore", "-q", "-d", &target.conn_string()]).arg(&archive).env_remove("PGSAFE_IDENTITY"));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains(&format!("`{}`", archive.display())), "the error names the archive: {stderr}");
    assert!(stderr.contains("the archive is encrypted to 2 recipients (X25519)"), "{stderr}");
    assert!(stderr.contains("hint: pass `--identity FILE`"), "{stderr}");

    let (wrong, _, _) = identity(dir.path(), "stranger.txt");
    let (code, _, stderr) =
        run(pgsafe().args(["restore", "-q", "-d", &target.conn_string(), "--identity"]).arg(&wrong).arg(&archive));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("none of the identities given opens the archive"), "{stderr}");
    assert!(stderr.contains(&format!("`{}`", archive.display())), "{stderr}");
    let (code, _, stderr) = run(pgsafe().arg("verify").arg("--identity").arg(&wrong).arg(&archive));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("none of the identities given opens the archive"), "{stderr}");
    assert_eq!(target.psql("SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace").trim(), "0");

    // A secret key where a recipient belongs is refused without being echoed.
    let secret = age::x25519::Identity::generate().to_string().expose_secret().to_string();
    let (code, _, stderr) =
        run(pgsafe().args(["dump", "-q", "-d", &target.conn_string(), "--encrypt-to", &secret, "-f", "/dev/null"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("not a recipient") && !stderr.contains(&secret[20..]), "{stderr}");
}

/// The chunks of an encrypted archive, in file order.
fn chunks(bytes: &[u8], id: &age::x25519::Identity) -> Vec<pgsafe::format::ChunkRef> {
    ArchiveIndex::open_with(bytes, &Keyring::of(Box::new(id.clone()))).unwrap().all_chunks()
}

/// Rewrites the CRCs of the frame at `at` to match its payload, as an attacker who knows the format can.
fn recompute_crcs(bytes: &mut [u8], at: usize, stored_len: usize) {
    let payload = at + FrameHeader::LEN;
    let crc = crc32fast::hash(&bytes[payload..payload + stored_len]);
    bytes[at + 24..at + 28].copy_from_slice(&crc.to_le_bytes());
    let crc = crc32fast::hash(&bytes[at..at + 28]);
    bytes[at + 28..at + 32].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn a_flipped_byte_or_a_swapped_chunk_is_detected() {
    let (_db, dir, archive, id_path, id) = encrypted_dump("enc_tamper");
    let bytes = std::fs::read(&archive).unwrap();
    let all = chunks(&bytes, &id);
    assert!(all.len() >= 4, "the fixture makes several chunks, got {}", all.len());
    let victim = all[1];
    let target = TestDb::new("enc_tamper_target");
    let verify = |path: &Path, identity: bool| {
        let mut cmd = pgsafe();
        cmd.arg("verify").env_remove("PGSAFE_IDENTITY");
        if identity {
            cmd.arg("--identity").arg(&id_path);
        }
        run(cmd.arg(path))
    };

    // A flipped byte in a sealed chunk: its CRC tells, with or without the identity.
    let flipped = dir.path().join("flipped.pgsafe");
    let mut b = bytes.clone();
    b[victim.entry.offset as usize + FrameHeader::LEN + 30] ^= 0x01;
    std::fs::write(&flipped, &b).unwrap();
    for identity in [true, false] {
        let (code, stdout, stderr) = verify(&flipped, identity);
        assert_eq!(code, 1, "identity {identity}: {stdout}{stderr}");
        assert!(stdout.contains("checksum mismatch"), "{stdout}");
    }
    // The same with the CRCs recomputed: only the seal can tell, and it does.
    recompute_crcs(&mut b, victim.entry.offset as usize, victim.entry.stored_len as usize);
    let resealed = dir.path().join("resealed.pgsafe");
    std::fs::write(&resealed, &b).unwrap();
    let (code, stdout, stderr) = verify(&resealed, true);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains("is damaged"), "{stdout}");
    let (code, _, stderr) =
        run(pgsafe().args(["restore", "-q", "-d", &target.conn_string(), "--identity"]).arg(&id_path).arg(&resealed));
    assert_ne!(code, 0, "a restore of a modified archive must fail");
    assert!(stderr.contains("chunk") && stderr.contains("part"), "{stderr}");

    // Two chunks of the same size swapped, their CRCs recomputed: the seal binds each to its place.
    let (a, c) = all
        .iter()
        .enumerate()
        .find_map(|(i, a)| all[i + 1..].iter().find(|c| c.entry.stored_len == a.entry.stored_len).map(|c| (*a, *c)))
        .expect("two chunks of the same size (the fixture's rows are cut in 16 KiB chunks)");
    let len = a.entry.stored_len as usize;
    let (pa, pc) = (a.entry.offset as usize + FrameHeader::LEN, c.entry.offset as usize + FrameHeader::LEN);
    let mut b = bytes.clone();
    b[pa..pa + len].copy_from_slice(&bytes[pc..pc + len]);
    b[pc..pc + len].copy_from_slice(&bytes[pa..pa + len]);
    recompute_crcs(&mut b, a.entry.offset as usize, len);
    recompute_crcs(&mut b, c.entry.offset as usize, len);
    let swapped = dir.path().join("swapped.pgsafe");
    std::fs::write(&swapped, &b).unwrap();
    let (code, stdout, stderr) = verify(&swapped, true);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let (code, stdout, stderr) = run(pgsafe()
        .args(["verify", "--identity"])
        .arg(&id_path)
        .arg("-")
        .stdin(std::fs::File::open(&swapped).unwrap()));
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains("does not authenticate"), "{stdout}");

    // Cut short: the footer is gone.
    let cut = dir.path().join("cut.pgsafe");
    std::fs::write(&cut, &bytes[..bytes.len() - 100]).unwrap();
    for identity in [true, false] {
        let (code, stdout, stderr) = verify(&cut, identity);
        assert_eq!(code, 1, "identity {identity}: {stdout}{stderr}");
    }
}

/// Every file of a local store, read whole.
fn store_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .collect();
    files.sort();
    files
}

#[test]
fn snapshots_to_the_stores_recipients_are_taken_without_the_identity_and_rolled_back_with_it() {
    let db = TestDb::new("enc_store");
    db.psql(SCHEMA);
    let before = crate::rollback::copy_of(&db, "enc_store_before");
    let keys = tempfile::tempdir().unwrap();
    let (id_path, public, _) = identity(keys.path(), "me.txt");
    let (other_path, _, _) = identity(keys.path(), "other.txt");
    let store = tempfile::tempdir().unwrap();
    // The backup host: the recipient only, no identity anywhere in its environment.
    let host = |args: &[&str]| {
        let mut cmd = pgsafe();
        cmd.arg(args[0]).arg("--store").arg(store.path()).args(&args[1..]);
        cmd.env("PGSAFE_RECIPIENTS", &public).env_remove("PGSAFE_IDENTITY");
        cmd
    };
    let (code, id, stderr) = run(&mut host(&["snapshot", "-d", &db.conn_string()]));
    assert_eq!(code, 0, "{stderr}");
    let id = id.trim().to_owned();
    assert!(stderr.contains("encrypted to 1 recipient (X25519)") && stderr.contains("verified"), "{stderr}");
    // Nothing of the database is readable in the store: not in the archive, not in the metadata, not in
    // the audit log.
    for (name, bytes) in store_files(store.path()) {
        for needle in [CANARY, "confidential_ledger", "CREATE TABLE", "other_things", "owner 3"] {
            assert!(!contains(&bytes, needle), "`{needle}` is readable in `{name}`");
        }
    }
    let archive = store.path().join(format!("{id}.pgsafe"));
    let header = &std::fs::read(&archive).unwrap()[8..16];
    assert_eq!(header, &[1, 0, 2, 0, 1, 0, 0, 0], "the snapshot is an encrypted (columnar, 1.2) archive");
    let listed: serde_json::Value = serde_json::from_str(&run_ok(&mut host(&["snapshots", "--json"]))).unwrap();
    let meta = &listed[0];
    assert_eq!(meta["encrypted_to"], serde_json::json!(["X25519"]), "{meta}");
    assert!(
        meta["verified_at"].is_string() && meta["manifest_blake3"].as_str().is_some_and(|h| h.len() == 64),
        "{meta}"
    );
    assert!(run_ok(&mut host(&["snapshots"])).contains("encrypted"));

    db.psql("DELETE FROM confidential_ledger WHERE id > 10; DROP TABLE other_things;");
    let changed = fingerprint(&db, "confidential_ledger");
    // The backup host cannot roll back: it cannot read its own snapshots. Nothing changes.
    let rollback = ["rollback", "-q", "-d", &db.conn_string(), &id, "--yes", "--in-place"];
    let (code, _, stderr) = run(&mut host(&rollback));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("PGSAFE_IDENTITY") || stderr.contains("--identity"), "{stderr}");
    assert_eq!(fingerprint(&db, "confidential_ledger"), changed, "nothing was restored");
    // A wrong identity is refused as clearly.
    let (code, _, stderr) = run(host(&rollback).env("PGSAFE_IDENTITY", &other_path));
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(fingerprint(&db, "confidential_ledger"), changed, "nothing was restored");
    // Both refusals are in the audit log, as failed rollbacks of that snapshot.
    let audit = std::fs::read_to_string(store.path().join("audit.jsonl")).unwrap();
    let refused = audit
        .lines()
        .filter(|l| l.contains("\"command\":\"rollback\"") && l.contains("\"outcome\":\"failed\"") && l.contains(&id))
        .count();
    assert_eq!(refused, 2, "{audit}");
    // The machine with the identity checks against it and rolls back; the database is as it was.
    let (code, stdout, stderr) =
        run(host(&["check", "-d", &db.conn_string(), "--against", &id, "--json"]).env("PGSAFE_IDENTITY", &id_path));
    assert_eq!(code, 1, "the rows lost since the snapshot are found: {stdout}{stderr}");
    assert!(stdout.contains("public.confidential_ledger") && stdout.contains("public.other_things"), "{stdout}");
    let (code, _, stderr) = run(host(&rollback).env("PGSAFE_IDENTITY", &id_path));
    assert_eq!(code, 0, "{stderr}");
    let (same, text) = compare_dbs(before.name(), db.name());
    assert!(same, "{text}");
    // The failed check's and the refused rollbacks' audit lines withhold their messages, which named the
    // tables the snapshot holds.
    for (name, bytes) in store_files(store.path()) {
        for needle in ["confidential_ledger", "other_things"] {
            assert!(!contains(&bytes, needle), "`{needle}` is readable in `{name}`");
        }
    }
    let audit = std::fs::read_to_string(store.path().join("audit.jsonl")).unwrap();
    assert!(audit.contains("the message is withheld"), "{audit}");
}

/// A store that encrypts to a recipient, on a machine without the identity (the tester's B1): `migrate`
/// could take its snapshot but could then neither check against it nor roll back to it, so it refuses
/// before the snapshot, exit 2, and nothing is applied. Before, it applied the migration and ended in
/// "needs attention" (exit 3) even when the migration itself was fine.
#[test]
fn migrate_to_an_encrypted_store_without_the_identity_refuses_before_anything() {
    let db = TestDb::new("enc_migrate");
    db.psql("CREATE TABLE orders (id int PRIMARY KEY, total numeric NOT NULL); INSERT INTO orders SELECT g, g FROM generate_series(1, 100) g;");
    let keys = tempfile::tempdir().unwrap();
    let (id_path, public, _) = identity(keys.path(), "me.txt");
    let store = tempfile::tempdir().unwrap();
    let file = keys.path().join("note.sql");
    std::fs::write(&file, "ALTER TABLE orders ADD COLUMN note text;\n").unwrap();
    let migrate = || {
        let mut cmd = pgsafe();
        cmd.args(["migrate", "-q", "--store"]).arg(store.path()).args(["-d", &db.conn_string()]).arg(&file);
        cmd.env("PGSAFE_RECIPIENTS", &public).env_remove("PGSAFE_IDENTITY");
        cmd
    };
    let (code, stdout, stderr) = run(&mut migrate());
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stderr.contains("--identity") && stderr.contains("nothing was applied"), "{stderr}");
    let note = "SELECT count(*) FROM information_schema.columns WHERE table_name = 'orders' AND column_name = 'note'";
    assert_eq!(db.psql(note).trim(), "0", "the migration was applied");
    assert_eq!(archives(store.path()), 0, "a snapshot was taken");
    // With the identity it runs, checks against its encrypted snapshot, and is applied.
    let (code, stdout, stderr) = run(migrate().env("PGSAFE_IDENTITY", &id_path));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(db.psql(note).trim(), "1");
}

/// `dry-run -- COMMAND` with a store that encrypts, without the identity: refused before a snapshot is
/// taken (before, it took one and then could not restore it into the scratch database).
#[test]
fn a_command_dry_run_with_an_encrypted_store_and_no_identity_takes_no_snapshot() {
    let db = TestDb::new("enc_dryrun");
    db.psql("CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders SELECT generate_series(1, 10);");
    let keys = tempfile::tempdir().unwrap();
    let (_, public, _) = identity(keys.path(), "me.txt");
    let store = tempfile::tempdir().unwrap();
    let dry_run = || {
        run(pgsafe()
            .args(["dry-run", "-q", "--store"])
            .arg(store.path())
            .args(["-d", &db.conn_string(), "--", "true"])
            .env("PGSAFE_RECIPIENTS", &public)
            .env_remove("PGSAFE_IDENTITY"))
    };
    let (code, stdout, stderr) = dry_run();
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stderr.contains("--identity") && stderr.contains("no snapshot was taken"), "{stderr}");
    assert_eq!(archives(store.path()), 0, "a snapshot was taken");
    // A plain snapshot the store holds already needs no identity: the rehearsal runs on it.
    crate::dump_restore::run_ok(
        pgsafe().args(["snapshot", "-q", "--store"]).arg(store.path()).args(["-d", &db.conn_string()]),
    );
    let (code, stdout, stderr) = dry_run();
    assert_eq!(code, 0, "{stdout}{stderr}");
}

/// How many snapshot archives the store folder `store` holds.
fn archives(store: &Path) -> usize {
    store_files(store).into_iter().filter(|(name, _)| name.ends_with(".pgsafe")).count()
}
