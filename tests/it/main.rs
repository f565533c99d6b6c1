// Test code unwraps freely: a panic with its location is the clearest failure a test can give.
#![allow(clippy::unwrap_used)]

// The throwaway PostgreSQL cluster and per-test databases every other module uses.
mod support;
// The throwaway cluster: the harness reaches it, `pgsafe cluster` hands it to scripts, it never lingers.
mod cluster;
// The format's test vectors read exactly as `vectors.json` says, in both readers.
mod vectors;
// Every flipped bit, changed byte and truncation of a valid archive is an error.
mod integrity;
// The archive file writer and reader: atomic, 0600, many producers, one owner.
mod archive_file;
mod azure;
// `pgsafe inspect` as a user runs it: output, errors, exit codes.
mod cli_inspect;
// Dump, verify and data-only restore on the throwaway cluster, as a user runs them.
mod dump_restore;
// Encrypted archives: a round trip to age recipients, nothing readable without the identity, tampering found.
mod encryption;
// Whole restores, schema and data: identical by pg_dump's account, refusals, never silent.
mod schema_restore;
// The restore plan: `--dry-run`, `--list`, `-f` and the run follow one plan.
mod restore_plan;
// Data-only restores as the tables' owner and as a superuser: triggers and foreign keys, `--role`.
mod data_only;
// SIGINT and SIGTERM: server statements cancelled, cleanup done, exit 2, what was done said.
mod interrupt;
// Full disk, the server going away, a killed pgsafe: clear errors, nothing that looks complete.
mod faults;
// Connection settings and failures as a user meets them: passwords, TLS, unreachable servers.
mod connect;
// Server errors decided by SQLSTATE on a German server, and the failed statement of a batch named.
mod pg_errors;
// `pgsafe demo`, the README's first command, end to end.
mod demo;
// The snapshot store: `snapshot`, `snapshots`, `prune`, retention, the lock, the audit log.
mod store;
// `pgsafe rollback`: the plan, swap, in place, tables, failures, a database's owner.
mod rollback;
// `pgsafe migrate` and `pgsafe migrations`: a folder, drift, down scripts, failures rolled back.
mod migrate;
// `pgsafe status`: the store at a glance, as text, Markdown and JSON.
mod status;
// `pgsafe check`: findings and exit codes on pagila, against a snapshot, as an owner, `--watch`, user SQL.
mod check;
// `pgsafe lint`: Prisma and Drizzle migrations line by line, JSON, GitHub, SARIF, parse errors, live facts.
mod lint;
// `pgsafe dry-run`: what a migration would lose, lock and rewrite, measured in a rolled back transaction.
mod dryrun;
// Archives in S3-compatible object storage (a local moto server): dump, verify, inspect, restore, aborts.
mod s3;
mod s3_store;
