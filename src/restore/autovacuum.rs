//! Autovacuum held off the big tables a whole restore makes, until their rows, indexes and reads are in.
//!
//! The rows a restore loads reach a new table's insert threshold at once, so an autovacuum worker may
//! start on the table while its parts still load, or between its load and its index builds. Its lock
//! (`SHARE UPDATE EXCLUSIVE`) is one that `CREATE INDEX` and `ADD PRIMARY KEY` wait for, and the server
//! cancels the worker only once the build has waited `deadlock_timeout` (1 s by default): on the
//! benchmark's data, 7 of about 20 whole restores spent that second with both cores idle (the server's
//! log: `canceling autovacuum task`), a seventh of a 7-second restore, at random. A worker starts only
//! on a table whose `autovacuum_enabled` is not off (a vacuum against wraparound aside), so the restore
//! turns it off in the transaction that makes the tables, and resets it once the tables' steps are done.
//!
//! Only a table whose definition leaves `autovacuum_enabled` unset, that the restoring role may alter, is
//! held: what the archive says of it stays as it is. A restore that fails gives it back too, as far as
//! the server lets it; what it could not give back, the error names with the statement to run.

use crate::error::Result;
use crate::format::TableName;
use crate::pg::{Session, quote_literal};

/// How long giving autovacuum back waits for a lock on a table (another session's index build, a
/// user's lock) before it gives up and says what to run.
const RESET_WAIT: &str = "10s";

/// The tables whose autovacuum the restore holds off, by their quoted names.
#[derive(Debug, Default)]
pub(super) struct HeldOff {
    tables: Vec<String>,
}

impl HeldOff {
    /// Turns autovacuum off for those of `tables` that the role may alter, whose definition does not set
    /// it, and that are ordinary tables. Runs in the transaction that made them.
    pub async fn hold(session: &Session, tables: &[&TableName]) -> Result<HeldOff> {
        if tables.is_empty() {
            return Ok(HeldOff::default());
        }
        let schemas: Vec<&str> = tables.iter().map(|t| t.schema.as_str()).collect();
        let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
        let rows = session
            .query(
                "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname)
                 FROM unnest($1::text[], $2::text[]) AS u(s, t)
                 JOIN pg_catalog.pg_namespace n ON n.nspname = u.s
                 JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = u.t
                 WHERE c.relkind = 'r' AND pg_catalog.pg_has_role(c.relowner, 'USAGE')
                   AND NOT EXISTS (SELECT FROM unnest(c.reloptions) o WHERE o LIKE 'autovacuum\\_enabled=%')",
                &[&schemas, &names],
            )
            .await
            .map_err(|e| e.context("finding the tables to hold autovacuum off"))?;
        let tables =
            rows.iter().map(|r| crate::pg::value(r, 0, "the tables to hold autovacuum off")).collect::<Result<_>>()?;
        let held = HeldOff { tables };
        if !held.tables.is_empty() {
            let sql: String = held
                .tables
                .iter()
                .map(|t| format!("ALTER TABLE ONLY {t} SET (autovacuum_enabled = false);\n"))
                .collect();
            session.batch(&sql).await.map_err(|e| e.context("holding autovacuum off the restored tables"))?;
            tracing::info!("autovacuum held off {} tables until their rows and indexes are in", held.tables.len());
        }
        Ok(held)
    }

    /// Resets `autovacuum_enabled` of the tables held, in one transaction that waits at most
    /// [`RESET_WAIT`] for each lock. What failed, with what to run instead, when it did.
    pub async fn give_back(&self, session: &Session) -> Option<String> {
        if self.tables.is_empty() {
            return None;
        }
        let resets: String =
            self.tables.iter().map(|t| format!("ALTER TABLE ONLY {t} RESET (autovacuum_enabled);\n")).collect();
        let sql = format!("BEGIN; SET LOCAL lock_timeout = {};\n{resets}COMMIT", quote_literal(RESET_WAIT));
        let e = session.batch(&sql).await.err()?;
        let _ = session.batch("ROLLBACK").await;
        Some(format!(
            "autovacuum stays off for {} restored tables, as the restore turned it off while they loaded: \
             turning it back on failed ({e}); {}",
            self.tables.len(),
            self.statement()
        ))
    }

    /// What to run to give autovacuum back by hand.
    pub fn statement(&self) -> String {
        const SHOWN: usize = 20;
        let shown: Vec<&str> = self.tables.iter().take(SHOWN).map(String::as_str).collect();
        let more = match self.tables.len() {
            n if n > SHOWN => format!(
                " and {} more (`SELECT oid::regclass FROM pg_class WHERE 'autovacuum_enabled=false' = ANY (reloptions)` lists them)",
                n - SHOWN
            ),
            _ => String::new(),
        };
        format!("run `ALTER TABLE ... RESET (autovacuum_enabled)` for {}{more}", shown.join(", "))
    }
}
