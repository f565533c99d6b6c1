//! `pgsafe restore FILE`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use clap::{Args, ValueEnum};
use jiff::Timestamp;
use pgsafe::archive::{ArchiveReader, spool};
use pgsafe::cancel::Cancel;
use pgsafe::restore::{
    Before, LeaveOut, ListSelection, RestoreKind, RestoreOptions, RestorePlan, RestoreReport, VerifyLevel,
};
use pgsafe::store::{AuditCommand, AuditEntry, Outcome, SnapshotArchive};
use pgsafe::{Error, ErrorKind};

use super::ArchiveArg;
use super::common::{ConnectArgs, FilterArgs, block_on_cancellable, default_jobs, progress};
use super::keys::IdentityArgs;
use super::output::{self, Exit};
use super::store::{AuditArgs, absolute};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum VerifyArg {
    Full,
    Count,
    None,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The archive: a file, `s3://bucket/key` (read by ranged requests), or `-` to read it from standard
    /// input (copied into a temporary file in TMPDIR first).
    #[arg(value_name = "FILE")]
    file: PathBuf,

    #[command(flatten)]
    connect: ConnectArgs,
    #[command(flatten)]
    filters: FilterArgs,
    #[command(flatten)]
    audit: AuditArgs,
    #[command(flatten)]
    identity: IdentityArgs,

    /// Parallel workers (connections). Default: the machine's cores.
    #[arg(short = 'j', long = "jobs", value_name = "N")]
    jobs: Option<usize>,

    /// Load only the data, into tables that already exist.
    #[arg(short = 'a', long = "data-only", conflicts_with = "schema_only")]
    data_only: bool,

    /// Create the schema only, no rows.
    #[arg(short = 's', long = "schema-only")]
    schema_only: bool,

    /// Whole restore: drop the archive's objects that exist in the target first. With `--data-only`:
    /// empty the archive's tables (and remove its large objects) before loading.
    #[arg(short = 'c', long)]
    clean: bool,

    /// With `--clean`, tolerate objects that do not exist (always the case: drops use IF EXISTS).
    #[arg(long = "if-exists")]
    if_exists: bool,

    /// Create the archive's database (named as in the archive) through the one `-d` names, and restore
    /// into it.
    #[arg(short = 'C', long)]
    create: bool,

    /// Leave every object owned by the restoring role.
    #[arg(short = 'O', long = "no-owner")]
    no_owner: bool,

    /// Leave out privileges (GRANT/REVOKE) and default privileges.
    #[arg(short = 'x', long = "no-privileges", alias = "no-acl")]
    no_privileges: bool,

    /// Make every object in the target database's default tablespace.
    #[arg(long = "no-tablespaces")]
    no_tablespaces: bool,

    /// Leave out comments.
    #[arg(long = "no-comments")]
    no_comments: bool,

    /// Leave out security labels (for a target without the label provider).
    #[arg(long = "no-security-labels")]
    no_security_labels: bool,

    /// Leave out publications.
    #[arg(long = "no-publications")]
    no_publications: bool,

    /// Leave out subscriptions.
    #[arg(long = "no-subscriptions")]
    no_subscriptions: bool,

    /// Run as this role (SET ROLE) in every session.
    #[arg(long, value_name = "ROLE")]
    role: Option<String>,

    /// Create the roles the archive names that the cluster lacks (NOLOGIN).
    #[arg(long = "create-roles")]
    create_roles: bool,

    /// Print what the archive holds (schema objects in restore order, then parts) and restore nothing.
    #[arg(short = 'l', long)]
    list: bool,

    /// Restore only what FILE, an edited `--list`, names; lines starting with `;` are left out.
    #[arg(short = 'L', long = "use-list", value_name = "FILE")]
    use_list: Option<PathBuf>,

    /// Write the schema's SQL script to FILE (`-` for standard output) instead of restoring.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    script: Option<PathBuf>,

    /// Print the plan (every step, what it covers) and restore nothing; with `--json`, the whole plan.
    #[arg(long = "dry-run")]
    dry_run: bool,

    /// All or nothing: one transaction, verification included (one worker).
    #[arg(short = '1', long = "single-transaction")]
    single_transaction: bool,

    /// What to check after loading: every table read back, its row count and content digest (full); row
    /// counts only (count: a table this restore made is counted as it loads, others read back); or nothing.
    #[arg(long, value_enum, default_value = "full")]
    verify: VerifyArg,

    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,

    /// No progress output.
    #[arg(short, long)]
    quiet: bool,
}

pub fn run(args: RestoreArgs) -> Result<Exit, Error> {
    // `--list`, `-f` and `--dry-run` touch no database: they leave no audit line.
    if args.list || args.script.is_some() || args.dry_run {
        return execute(&args, &mut Restored::default());
    }
    let (started_at, started) = (Timestamp::now(), Instant::now());
    let mut restored = Restored::default();
    let result = execute(&args, &mut restored);
    let outcome = match &result {
        Ok(Exit::CheckFailed) => Outcome::Failed {
            error: format!(
                "verification failed: {} problem(s){}",
                restored.problems.len(),
                restored.problems.first().map(|p| format!(", first: {p}")).unwrap_or_default()
            ),
        },
        result => Outcome::of(result),
    };
    let mut entry = AuditEntry::new(AuditCommand::Restore, started_at, outcome, started.elapsed().as_secs_f64());
    if let Ok(connect) = args.connect.options() {
        entry = entry.connected_to(&connect);
    }
    if let Some(database) = restored.database {
        entry.database = Some(database);
    }
    match ArchiveArg::parse(args.file.as_os_str()) {
        Ok(ArchiveArg::Path(path)) => {
            entry.snapshot = args.audit.snapshot_of(&SnapshotArchive::File(path.clone()));
            entry.archive = Some(absolute(&path));
        }
        Ok(ArchiveArg::Object(location)) => {
            entry.archive = Some(location.to_string());
            entry.snapshot = args.audit.snapshot_of(&SnapshotArchive::Object(location));
        }
        _ => {}
    }
    args.audit.record(&entry);
    result
}

/// What a restore tells its audit line beyond its result.
#[derive(Debug, Default)]
struct Restored {
    /// The database `--create` made and restored into (the archive's).
    database: Option<String>,
    /// What its verification found.
    problems: Vec<String>,
}

fn execute(args: &RestoreArgs, restored: &mut Restored) -> Result<Exit, Error> {
    if args.data_only && (args.create || args.create_roles || args.script.is_some()) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "`--data-only` loads rows into existing tables: it cannot be combined with `--create`, `--create-roles` or `-f`",
        ));
    }
    let keyring = args.identity.keyring()?;
    // One cancellation for the whole restore: the reads of an archive in object storage, from its opening
    // on, hear it as the restore's sessions do.
    let cancel = Cancel::new();
    let archive = Arc::new(match ArchiveArg::parse(args.file.as_os_str())? {
        ArchiveArg::Stdio => ArchiveReader::from_file_with(
            spool(std::io::stdin().lock(), "standard input", "restore")?,
            Path::new("standard input"),
            &keyring,
        )
        .map_err(|e| e.context("the archive read from standard input"))?,
        ArchiveArg::Path(path) => ArchiveReader::open_with(&path, &keyring)?,
        // Opened under the signal watch: an endpoint that does not answer is left at the first Ctrl-C.
        ArchiveArg::Object(location) => block_on_cancellable("restore", &cancel, async {
            ArchiveReader::open_object_cancelled_by(&location, &keyring, &cancel)
        })?,
    });
    let use_list = match &args.use_list {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Error::new(ErrorKind::Io, format!("cannot read the list `{}`", path.display())).with_source(e)
            })?;
            Some(ListSelection::parse(&text, &path.display().to_string())?)
        }
        None => None,
    };
    let catalog = archive.index().catalog();
    // An archive without a schema can only be listed as the data it holds.
    let data_only = args.data_only || (args.list && catalog.schema.is_none());
    let options = RestoreOptions {
        connect: args.connect.options()?,
        jobs: if args.single_transaction { 1 } else { args.jobs.unwrap_or_else(default_jobs).max(1) },
        filters: args.filters.filters(&[])?,
        single_transaction: args.single_transaction,
        verify: match args.verify {
            VerifyArg::Full => VerifyLevel::Full,
            VerifyArg::Count => VerifyLevel::Count,
            VerifyArg::None => VerifyLevel::None,
        },
        clean: args.clean,
        data_only,
        schema_only: args.schema_only,
        leave_out: LeaveOut {
            owner: args.no_owner,
            privileges: args.no_privileges,
            tablespaces: args.no_tablespaces,
            comments: args.no_comments,
            security_labels: args.no_security_labels,
            publications: args.no_publications,
            subscriptions: args.no_subscriptions,
        },
        use_list,
        drop_also: Vec::new(),
        lock_timeout: None,
        first_in_transaction: None,
        role: args.role.clone(),
        create_roles: args.create_roles,
        create: args.create.then(|| catalog.server.database.clone()),
        cancel,
    };
    restored.database = options.create.clone();
    let plan = pgsafe::restore::plan(&archive, &options)?;
    if args.list {
        output::stdout(&pgsafe::restore::list(&plan))?;
        return Ok(Exit::Success);
    }
    if let Some(path) = &args.script {
        let text = plan.script()?;
        if path.as_os_str() == "-" {
            output::stdout(&text)?;
        } else {
            std::fs::write(path, text)
                .map_err(|e| Error::new(ErrorKind::Io, format!("cannot write `{}`", path.display())).with_source(e))?;
        }
        return Ok(Exit::Success);
    }
    if args.dry_run {
        if args.json {
            output::stdout(&(serde_json::to_string_pretty(&plan).expect("the plan serializes") + "\n"))?;
        } else {
            output::stdout(&describe_plan(&plan, &options.connect.describe()))?;
        }
        return Ok(Exit::Success);
    }
    let report = block_on_cancellable(
        "restore",
        &options.cancel,
        pgsafe::restore::restore_planned(archive.clone(), plan, &options, progress(args.quiet)),
    )?;
    restored.problems = report.problems.clone();
    if args.json {
        output::stdout(&(serde_json::to_string_pretty(&report).expect("the report serializes") + "\n"))?;
    } else {
        if !args.quiet || !report.problems.is_empty() {
            eprint!("{}", summary(&report));
        }
        for w in &report.warnings {
            eprintln!("warning: {w}");
        }
    }
    Ok(if report.problems.is_empty() { Exit::Success } else { Exit::CheckFailed })
}

/// `3 parts`, `1 part`.
fn count(n: usize, what: &str) -> String {
    if n == 1 { format!("1 {what}") } else { format!("{n} {what}s") }
}

/// `--dry-run`: the plan's steps, one line each, with what each covers.
fn describe_plan(plan: &RestorePlan, target: &str) -> String {
    let s = &plan.source;
    let sessions = |n: usize| format!("on {}", count(n, "session"));
    let mut steps: Vec<String> = Vec::new();
    if let Some(db) = &plan.database {
        let drop = if db.drop_first { "drop the database `{}` if it exists, then " } else { "" };
        steps.push(format!("{}create the database `{}` through `{target}`", drop.replace("{}", &db.name), db.name));
    }
    match &plan.before {
        Before::RefuseNonEmpty => steps.push("refuse the target if it holds any user object".into()),
        Before::DropArchiveObjects { statements } => steps.push(format!(
            "drop the archive's objects that exist ({}, one transaction)",
            count(statements.len(), "statement")
        )),
        Before::NewDatabase => {}
        Before::RequireEmptyTables | Before::EmptyTables => {
            let empty = if plan.before == Before::EmptyTables { "empty them" } else { "refuse any that holds rows" };
            steps.push(format!(
                "check that the {} exist with the archive's columns, then {empty}; read their triggers and foreign keys, which nothing switches off outside the transaction that loads a table",
                count(plan.tables.len(), "table")
            ));
        }
    }
    if !plan.create_roles.is_empty() {
        steps.push(format!("create the roles the cluster lacks among {}", plan.create_roles.join(", ")));
    }
    if plan.kind != RestoreKind::DataOnly {
        steps.push(format!("pre-data: {}, in one transaction", count(plan.pre_data.len(), "schema object")));
    }
    if !plan.data.is_empty() {
        steps.push(format!(
            "data: {} of {}, {}, {} rows, {}",
            count(plan.data.len(), "part"),
            count(plan.tables.len(), "table"),
            output::bytes(plan.data_bytes()),
            plan.data_rows(),
            sessions(plan.jobs)
        ));
    }
    if plan.kind == RestoreKind::DataOnly {
        steps.push(if plan.single_transaction {
            "user triggers and the foreign keys that check the rows off during the load and back before the commit".into()
        } else {
            "a superuser's sessions keep foreign keys and ordinary triggers from firing; other roles' loads fill the tables a key references first, and load tables whose keys refer to each other, or whose triggers fire, each in one transaction that switches them off and back on".into()
        });
    } else {
        steps.push(format!(
            "post-data: {} (indexes, constraints, triggers, ...), {}, each once what it needs is done",
            count(plan.post_data.len(), "object"),
            sessions(plan.jobs)
        ));
        let outside = plan.outside_tables();
        if !outside.is_empty() {
            let needing = plan.pre_data.iter().chain(&plan.post_data).filter(|o| !o.outside_tables.is_empty()).count();
            let names: Vec<String> = outside.iter().map(|t| format!("`{t}`")).collect();
            steps.push(format!(
                "{} need{} {}, which this restore does not make: each is made where the target has what it needs, and left out, with a warning, where not",
                count(needing, "object"),
                if needing == 1 { "s" } else { "" },
                names.join(", ")
            ));
        }
    }
    if !plan.sequences.is_empty() {
        steps.push(format!("sequence values: {}", plan.sequences.len()));
    }
    if !plan.privileges.is_empty() {
        steps.push(format!("privileges of {}", count(plan.privileges.len(), "object")));
    }
    if !plan.after_privileges.is_empty() {
        steps.push(format!(
            "after the privileges: {} default privileges, materialized view refreshes and event triggers",
            plan.after_privileges.len()
        ));
    }
    if plan.kind == RestoreKind::DataOnly {
        steps.push("every foreign key on or to the tables checked".into());
    }
    steps.push(match plan.verify {
        VerifyLevel::None => "no verification (`--verify none`)".to_string(),
        VerifyLevel::Full => format!(
            "verification (row counts and content digests): {}, {}",
            count(plan.tables.len(), "table"),
            count(plan.sequences.len(), "sequence")
        ),
        VerifyLevel::Count => {
            let how = match plan.tables_counted_on_load() {
                0 => "read back".to_string(),
                n if n == plan.tables.len() => "counted as they load".to_string(),
                n => format!("{n} of them counted as they load, the others read back"),
            };
            format!("verification (row counts): {} ({how})", count(plan.tables.len(), "table"))
        }
    });
    if let Some(db) = plan.database.as_ref().filter(|d| !d.finish.is_empty()) {
        steps.push(format!("give `{}` the source's owner, comment, privileges and settings", db.name));
    }
    let mut out = format!(
        "restore plan: the archive of `{}` ({}, dumped {}) into `{target}`{}\n",
        s.database,
        s.server_version,
        s.dumped_at,
        if plan.single_transaction { ", all in one transaction" } else { "" }
    );
    for (i, step) in steps.iter().enumerate() {
        out.push_str(&format!("  {}. {step}\n", i + 1));
    }
    out.push_str(
        "nothing was done (`--dry-run`); `--list` lists every item, `--dry-run --json` prints the whole plan\n",
    );
    out
}

fn summary(r: &RestoreReport) -> String {
    let mut s = format!(
        "restored {} schema objects, {} tables ({} parts), {} rows, {} sequences, {} large objects into `{}` in {:.1}s\n",
        r.schema_objects, r.tables, r.parts, r.rows, r.sequences, r.large_objects, r.target, r.seconds
    );
    // The keys the rows break are problems too: said apart from what verification found.
    let keys: Vec<String> = r.foreign_keys_not_valid.iter().map(|k| k.problem(!r.rolled_back)).collect();
    let verification: Vec<&String> = r.problems.iter().filter(|p| !keys.contains(p)).collect();
    let hold = if keys.is_empty() { "; foreign keys hold" } else { "" };
    match (r.verify, verification.is_empty()) {
        (VerifyLevel::None, true) => s.push_str(&format!("not verified (`--verify none`){hold}\n")),
        (_, true) => s.push_str(&format!(
            "verified {} tables ({}): what landed is what was dumped{hold}\n",
            r.tables_verified,
            match (r.verify, r.tables_counted_on_load) {
                (VerifyLevel::Full, _) => "row counts and content digests".to_string(),
                (_, 0) => "row counts".to_string(),
                (_, n) if n == r.tables_verified => "row counts, as they loaded".to_string(),
                (_, n) => format!("row counts, {n} of them as they loaded"),
            }
        )),
        (_, false) => {
            s.push_str(&format!("verification failed: {} problem(s)\n", verification.len()));
            for p in verification {
                s.push_str(&format!("  {p}\n"));
            }
        }
    }
    if !keys.is_empty() {
        s.push_str(&format!("rows break {}:\n", count(keys.len(), "foreign key")));
        for k in &keys {
            s.push_str(&format!("  {k}\n"));
        }
    }
    if r.rolled_back {
        s.push_str("the transaction rolled back: nothing was restored\n");
    }
    s
}
