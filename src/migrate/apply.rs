//! Applying a migration: SQL in a transaction under `lock_timeout`, retried with backoff and jitter when
//! a lock is not granted in time; another tool's command with the connection in its environment; and
//! `ANALYZE` of what the migration made or rewrote.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::cancel::Cancel;
use crate::dryrun::TransactionModes;
use crate::error::{Error, ErrorKind, Result, SqlState};
use crate::pg::{ConnectOptions, Session};

/// How SQL is applied.
#[derive(Debug, Clone, Copy)]
pub struct LockPolicy {
    /// `lock_timeout` of each attempt.
    pub timeout: Duration,
    /// Attempts after the first when a lock is not granted in time.
    pub retries: u32,
}

/// A run of a file's statements as the server takes them: a batch (the simple protocol), or a
/// `COPY ... FROM STDIN` with its rows (the COPY sub-protocol, which a batch cannot carry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    Batch(String),
    Copy {
        sql: String,
        rows: String,
        /// The statement's line in its file, and its rows' first line.
        line: usize,
        rows_line: usize,
    },
    /// A `COPY ... TO STDOUT`: its output goes to stderr, as a command's does (psql prints it).
    CopyOut {
        sql: String,
        line: usize,
    },
}

impl Piece {
    /// Runs it, a `COPY ... TO STDOUT`'s output written to stderr as it comes.
    pub(crate) async fn run(&self, session: &Session) -> Result<()> {
        self.run_into(session, &mut |piece| {
            use std::io::Write;
            let _ = std::io::stderr().write_all(piece);
        })
        .await
    }

    /// Runs it, a `COPY ... TO STDOUT`'s output handed to `out`.
    async fn run_into(&self, session: &Session, out: &mut (dyn FnMut(&[u8]) + Send)) -> Result<()> {
        match self {
            Piece::Batch(sql) => session.batch(sql).await,
            Piece::Copy { sql, rows, line, rows_line } => session
                .copy_rows(sql, rows)
                .await
                .map(drop)
                .map_err(|e| e.context(format!("line {line}, its rows from line {rows_line}"))),
            Piece::CopyOut { sql, line } => session
                .copy_out_to(sql, |piece| out(piece))
                .await
                .map(drop)
                .map_err(|e| e.context(format!("line {line}"))),
        }
    }
}

/// Runs `parts` in order (and then `after`), all in one transaction in the `modes` the files ask for, under
/// the lock policy; a lock not granted in time rolls the attempt back and tries again after a backoff with
/// jitter. Each part is a file's statements and what names it when one of them fails (a file's label;
/// `None` adds nothing). Returns how many attempts it took.
pub(crate) async fn in_transaction(
    session: &Session,
    parts: &[(Option<&str>, &[Piece])],
    after: &str,
    modes: &TransactionModes,
    policy: LockPolicy,
    cancel: &Cancel,
) -> Result<u32> {
    let mut attempt = 0;
    loop {
        cancel.check("the migration")?;
        let mut output = HeldOutput::default();
        let run = async {
            // The modes on the BEGIN itself: a file's own `SET TRANSACTION` then still comes before any query.
            session.batch(&modes.begin()).await?;
            session.batch(&format!("SET LOCAL lock_timeout = '{}ms'", policy.timeout.as_millis())).await?;
            for (label, pieces) in parts {
                for piece in *pieces {
                    piece.run_into(session, &mut |bytes| output.write(bytes)).await.map_err(|e| match label {
                        Some(label) => e.context(format!("`{label}`")),
                        None => e,
                    })?;
                }
            }
            if !after.is_empty() && modes.writes() {
                session.batch(after).await?;
            }
            cancel.check("the migration")?;
            session.batch("COMMIT").await?;
            // A `READ ONLY` transaction cannot write `after` (a migration's record): it is written in a
            // transaction of its own once the files' one committed, having changed nothing.
            if !after.is_empty() && !modes.writes() {
                session.batch(after).await?;
            }
            Ok::<_, Error>(())
        }
        .await;
        match run {
            Ok(()) => {
                output.print();
                return Ok(attempt + 1);
            }
            Err(e) => {
                let _ = session.batch("ROLLBACK").await;
                if e.sqlstate() != Some(SqlState::LOCK_NOT_AVAILABLE) || attempt >= policy.retries {
                    // What the failed attempt printed belongs to the error; an attempt tried again prints
                    // it again.
                    output.print();
                    return Err(out_of_attempts(e, "migration", attempt + 1, policy));
                }
                let wait = backoff(attempt);
                tracing::warn!("a lock was not granted within {:?}; trying again in {wait:?}", policy.timeout);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = cancel.cancelled() => {}
                }
                attempt += 1;
            }
        }
    }
}

/// The output of the `COPY ... TO STDOUT`s of one attempt of [`in_transaction`], in an anonymous
/// temporary file (memory does not grow with it), printed to stderr once the attempt commits or fails for
/// good: an attempt rolled back after a lock timeout and tried again prints it once, as psql would have.
/// Where no temporary file can be made it is printed as it comes.
#[derive(Default)]
struct HeldOutput {
    file: Option<std::fs::File>,
    /// No temporary file could be made: the output goes straight to stderr.
    through: bool,
}

impl HeldOutput {
    fn write(&mut self, bytes: &[u8]) {
        use std::io::Write;
        if self.file.is_none() && !self.through {
            match tempfile::tempfile() {
                Ok(f) => self.file = Some(f),
                Err(e) => {
                    tracing::warn!("no temporary file for a migration's COPY output ({e}): printing it as it comes");
                    self.through = true;
                }
            }
        }
        match &mut self.file {
            Some(f) => {
                if let Err(e) = f.write_all(bytes) {
                    tracing::warn!("a migration's COPY output could not be held ({e}): printing it as it comes");
                    self.print();
                    self.through = true;
                    let _ = std::io::stderr().write_all(bytes);
                }
            }
            None => {
                let _ = std::io::stderr().write_all(bytes);
            }
        }
    }

    /// Prints what is held, once.
    fn print(&mut self) {
        use std::io::{Seek, Write};
        if let Some(mut f) = self.file.take()
            && f.rewind().is_ok()
        {
            let mut err = std::io::stderr().lock();
            let _ = std::io::copy(&mut f, &mut err);
            let _ = err.flush();
        }
    }
}

/// `e`, and when it is a lock not granted in time (after `attempts` of `policy`), the hint that says so and
/// which options allow more. `what` needed the lock: `migration`, `rollback`.
pub(crate) fn out_of_attempts(e: Error, what: &str, attempts: u32, policy: LockPolicy) -> Error {
    match e.sqlstate() {
        Some(SqlState::LOCK_NOT_AVAILABLE) => e.and_hint(format!(
            "another session held a lock the {what} needs through {attempts} attempts of {}ms each; `--lock-retries` and `--lock-timeout` allow more",
            policy.timeout.as_millis()
        )),
        _ => e,
    }
}

/// Exponential backoff from half a second, at most ten, with ±50% jitter (so that two waiting
/// deployments do not retry in step).
pub(crate) fn backoff(attempt: u32) -> Duration {
    use std::hash::{BuildHasher as _, Hasher as _};
    let base = (500u64 << attempt.min(5)).min(10_000);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(attempt);
    let jitter = hasher.finish() % (base + 1);
    Duration::from_millis(base / 2 + jitter)
}

/// Runs another tool's migration command with the connection in its environment (`DATABASE_URL` and
/// `PG*`), its output on pgsafe's standard error (standard output is for pgsafe's report). Returns its
/// exit code (`None` when a signal ended it).
pub(crate) async fn run_command(argv: &[String], connect: &ConnectOptions) -> Result<Option<i32>> {
    let Some((program, args)) = argv.split_first() else {
        return Err(Error::new(ErrorKind::InvalidInput, "`--` names no command to run"));
    };
    let mut command = std::process::Command::new(program);
    command.args(args);
    connect.child_env().apply(&mut command);
    command.stdin(std::process::Stdio::null());
    command.stdout(std::io::stderr());
    let mut child = command.spawn().map_err(|e| {
        Error::new(ErrorKind::InvalidInput, format!("running `{program}`: {e}"))
            .with_hint("the command after `--` must be a program on PATH, with its arguments")
    })?;
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .map_err(|e| Error::new(ErrorKind::Io, format!("waiting for `{program}`: {e}")))?
        .map_err(|e| Error::new(ErrorKind::Io, format!("waiting for `{program}`: {e}")))?;
    Ok(status.code())
}

/// The relations [`relations`] reads, by OID: (storage file, 0 without one; `schema.name`).
pub(crate) type Relations = HashMap<u32, (u32, String)>;

/// Every table, partitioned table, materialized view and foreign table outside the system schemas, by
/// OID: its storage file (0 without one) and `schema.name`, quoted as a snapshot names its tables. Read
/// before and after a migration: what it created or rewrote, dropped and renamed.
pub(crate) async fn relations(session: &Session) -> Result<Relations> {
    const SQL: &str = "SELECT c.oid, c.relfilenode, \
        pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname) \
        FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
        WHERE c.relkind IN ('r', 'p', 'm', 'f') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
        AND n.nspname !~ '^pg_toast' AND n.nspname !~ '^pg_temp'";
    let mut found = HashMap::new();
    for row in session.query(SQL, &[]).await? {
        let oid: u32 = crate::pg::value(&row, 0, SQL)?;
        found.insert(oid, (crate::pg::value(&row, 1, SQL)?, crate::pg::value(&row, 2, SQL)?));
    }
    Ok(found)
}

/// The tables a migration dropped (their OID gone) and renamed or moved to another schema (their OID
/// under another name), from [`relations`] before and after it: the snapshot's tables that are not there by
/// their old names because the migration meant it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TableChanges {
    pub dropped: Vec<String>,
    /// (old name, new name).
    pub renamed: Vec<(String, String)>,
}

impl TableChanges {
    /// A table whose name is taken again after (dropped and made anew, as a tool that redefines a table
    /// does) is neither: it is checked by its name.
    pub(crate) fn between(before: &Relations, after: &Relations) -> TableChanges {
        let mut changes = TableChanges::default();
        let names: std::collections::HashSet<&String> = after.values().map(|(_, name)| name).collect();
        for (oid, (_, name)) in before.iter().filter(|(_, (_, name))| !names.contains(name)) {
            match after.get(oid).map(|(_, now)| now) {
                None => changes.dropped.push(name.clone()),
                Some(now) if now != name => changes.renamed.push((name.clone(), now.clone())),
                Some(_) => {}
            }
        }
        changes.dropped.sort();
        changes.renamed.sort();
        changes
    }
}

/// `ANALYZE` of each table the migration created or rewrote (a new storage file has no statistics);
/// returns their names.
pub(crate) async fn analyze_changed(session: &Session, before: &Relations, after: &Relations) -> Result<Vec<String>> {
    let started = Instant::now();
    let file = |relations: &Relations, oid: &u32| relations.get(oid).map(|(file, _)| *file);
    let mut changed: Vec<u32> =
        after.iter().filter(|(oid, (f, _))| *f != 0 && file(before, oid) != Some(*f)).map(|(oid, _)| *oid).collect();
    changed.sort_unstable();
    let mut names = Vec::new();
    for oid in changed {
        let row = session.query_one("SELECT $1::oid::regclass::text", &[&oid]).await?;
        let name: String = crate::pg::value(&row, 0, "a relation's name")?;
        session.batch(&format!("ANALYZE {name}")).await?;
        names.push(name);
    }
    tracing::info!("analyzed {} relation(s) in {:.1}s", names.len(), started.elapsed().as_secs_f64());
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_dropped_or_renamed_is_told_by_its_oid() {
        let map = |pairs: &[(u32, &str)]| pairs.iter().map(|(o, n)| (*o, (*o + 1000, (*n).to_owned()))).collect();
        let before = map(&[(1, "public.a"), (2, "public.b"), (3, "public.c"), (4, "public.d"), (6, "public.f")]);
        let after = map(&[(1, "public.a"), (3, "archive.c"), (4, "public.e"), (5, "public.b")]);
        let changes = TableChanges::between(&before, &after);
        // `b` was dropped and another table of its name made: checked by its name, as any other.
        assert_eq!(changes.dropped, ["public.f"]);
        assert_eq!(
            changes.renamed,
            [("public.c".to_owned(), "archive.c".to_owned()), ("public.d".to_owned(), "public.e".to_owned())]
        );
    }

    #[test]
    fn backoff_grows_to_ten_seconds_with_jitter_of_half() {
        for attempt in 0..10 {
            let base = (500u64 << attempt.min(5)).min(10_000);
            let wait = backoff(attempt).as_millis() as u64;
            assert!((base / 2..=base + base / 2).contains(&wait), "attempt {attempt}: {wait}ms");
        }
    }
}
