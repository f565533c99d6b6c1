//! `pgsafe lint`: migration SQL read with PostgreSQL's parser, findings as compiler diagnostics, JSON,
//! GitHub annotations or SARIF; exit 0 when nothing reaches `--fail-on`, 1 when something does, 2 when a
//! file does not parse or cannot be read.

use std::io::Read;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use jiff::Timestamp;
use pgsafe::lint::fix::FileFix;
use pgsafe::lint::{self, Finding, Level, LintOptions, LintReport, RULES, SourceFile};
use pgsafe::store::resolve_dir;
use pgsafe::{Error, ErrorKind};
use serde_json::json;

use super::PathOrStdio;
use super::common::{ConnectArgs, block_on};
use super::output::{self, Exit};

#[derive(Debug, Args)]
pub struct LintArgs {
    /// SQL files, folders of them (in the order `migrate` applies them, by version; `*.down.sql`
    /// skipped; a Prisma `migrations/` folder: each `migration.sql`), or `-` for standard input.
    #[arg(value_name = "FILE|DIR|-", required = true)]
    paths: Vec<PathBuf>,

    /// With `-d`: read the database's facts (table sizes, indexes, constraints, version), read only.
    #[command(flatten)]
    connect: ConnectArgs,

    /// How to print the findings.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,

    /// Exit 1 when a finding is at this level or above.
    #[arg(long = "fail-on", value_enum, default_value_t = FailOn::Error)]
    fail_on: FailOn,

    /// The PostgreSQL major version the migration will run on (with `-d`, the server's).
    #[arg(long = "pg-version", value_name = "N", default_value_t = lint::DEFAULT_PG_VERSION)]
    pg_version: u32,

    /// With `-d`: a lock or rewrite hazard on a table with fewer rows than this is a hint.
    #[arg(long = "small-table-rows", value_name = "N", default_value_t = lint::DEFAULT_SMALL_TABLE_ROWS)]
    small_table_rows: u64,

    /// The files will run under `pgsafe migrate`, which sets `lock_timeout` itself.
    #[arg(long)]
    migrate: bool,

    /// Rewrite the files in place where a finding has a mechanical safe form (`CONCURRENTLY`, `NOT VALID`
    /// then `VALIDATE`, `SET NOT NULL` through a check, a `lock_timeout` preamble); the findings are those
    /// of the fixed files.
    #[arg(long, conflicts_with = "diff")]
    fix: bool,

    /// Print what `--fix` would change as a unified diff, and write nothing.
    #[arg(long)]
    diff: bool,

    /// Flyway migrations (`V1__x.sql`, `R__x.sql`) are read with their placeholders filled, as
    /// `pgsafe migrate` fills them.
    #[command(flatten)]
    flyway: super::migrate::FlywayArgs,

    /// The store whose audit log gets a line per run, when it exists (lint never creates it). Default:
    /// env `PGSAFE_DIR`, else env `BACKUP_DIR`, else `./.pgsafe`.
    #[arg(long = "store", value_name = "DIR")]
    store: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
    Github,
    Sarif,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FailOn {
    Error,
    Warning,
    Never,
}

impl FailOn {
    fn level(self) -> Option<Level> {
        match self {
            FailOn::Error => Some(Level::Error),
            FailOn::Warning => Some(Level::Warning),
            FailOn::Never => None,
        }
    }
}

pub fn run(args: LintArgs) -> Result<Exit, Error> {
    let started_at = Timestamp::now();
    let store = pgsafe::store::existing(&resolve_dir(args.store.as_deref()), Default::default())?;
    let fail_on = args.fail_on.level();
    if args.fix && args.paths.iter().any(|p| matches!(PathOrStdio::from(p.as_os_str()), PathOrStdio::Stdio)) {
        return Err(Error::new(ErrorKind::InvalidInput, "`--fix` cannot rewrite standard input in place")
            .with_hint("`pgsafe lint --diff -` prints the rewrite as a diff"));
    }
    let mut names = Vec::new();
    let (result, fixes) = match lint(&args, &mut names) {
        Ok((report, fixes)) => (Ok(report), fixes),
        Err(e) => (Err(e), Vec::new()),
    };
    if let Some(store) = &store {
        let seconds = Timestamp::now().duration_since(started_at).as_secs_f64();
        let mut entry = lint::audit_entry(&names, started_at, seconds, &result, fail_on);
        if args.connect.dbname.is_some()
            && let Ok(connect) = args.connect.options()
        {
            entry = entry.connected_to(&connect);
        }
        store.append_audit(&entry).map_err(|e| e.context("lint ran, but its audit line was not written"))?;
    }
    let report = result?;
    if args.fix || args.diff {
        let mut notes = String::new();
        for fix in &fixes {
            for n in &fix.applied {
                notes.push_str(&format!("{}:{}: fixed[{}]: {}\n", fix.name, n.line, n.rule, n.note));
            }
            for n in &fix.skipped {
                notes.push_str(&format!("{}:{}: not fixed[{}]: {}\n", fix.name, n.line, n.rule, n.note));
            }
        }
        eprint!("{notes}");
    }
    if args.fix {
        for fix in fixes.iter().filter(|f| f.changed()) {
            write_in_place(Path::new(&fix.name), &fix.after)?;
        }
    }
    if args.diff {
        let diff: String = fixes.iter().map(|f| lint::fix::unified_diff(&f.name, &f.before, &f.after)).collect();
        output::stdout(&diff)?;
        return Ok(if report.fails(fail_on) { Exit::CheckFailed } else { Exit::Success });
    }
    let text = match args.format {
        Format::Text => text(&report),
        Format::Json => serde_json::to_string_pretty(&report).expect("the report serializes") + "\n",
        Format::Github => github(&report),
        Format::Sarif => serde_json::to_string_pretty(&sarif(&report)).expect("SARIF serializes") + "\n",
    };
    output::stdout(&text)?;
    if !report.syntax_errors.is_empty() {
        if args.format == Format::Text {
            for e in &report.syntax_errors {
                output::print_error(&e.to_error());
            }
        }
        return Ok(Exit::Error);
    }
    Ok(if report.fails(fail_on) { Exit::CheckFailed } else { Exit::Success })
}

/// Reads, parses and lints the files (their names into `names`, for the audit line); with `--fix` or
/// `--diff`, fixes them and lints the fixed text.
fn lint(args: &LintArgs, names: &mut Vec<String>) -> Result<(LintReport, Vec<FileFix>), Error> {
    let mut sources = read_sources(&args.paths)?;
    names.extend(sources.iter().map(|s| s.name.clone()));
    // A Flyway migration's placeholders are filled before it is read, as Flyway and `migrate` fill them;
    // a fix would write their values into the file, so a file that holds any is not fixed.
    let files: Vec<(PathBuf, &str)> = sources.iter().map(|s| (PathBuf::from(&s.name), s.text.as_str())).collect();
    let connect = args.connect.dbname.as_ref().map(|_| args.connect.options()).transpose()?;
    let filled = args.flyway.fill(&files, connect.as_ref())?;
    for (source, filled) in sources.iter_mut().zip(filled) {
        let Some(filled) = filled else { continue };
        if args.fix || args.diff {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("`{}` holds Flyway placeholders: `--fix` would write their values into it", source.name),
            )
            .with_hint("lint it without `--fix`, and make the changes the findings name by hand"));
        }
        source.text = filled;
    }
    // A file the parser refuses is reported, and the others are still linted: a CI run gets every
    // finding, and the syntax error in the format it reads.
    let mut parsed = Vec::new();
    let mut syntax_errors = Vec::new();
    for source in sources {
        match lint::try_parse(source) {
            Ok(file) => parsed.push(file),
            Err(e) if args.fix || args.diff => return Err(e.to_error()),
            Err(e) => syntax_errors.push(e),
        }
    }
    let facts = match &args.connect.dbname {
        Some(_) => {
            let connect = args.connect.options()?;
            let named = lint::named(&parsed);
            Some(block_on("lint", lint::read_facts(&connect, &named))?)
        }
        None => None,
    };
    let options = LintOptions {
        pg_version: args.pg_version,
        assume_lock_timeout: args.migrate,
        small_table_rows: args.small_table_rows,
    };
    if !(args.fix || args.diff) {
        let mut report = lint::lint(&parsed, &options, facts.as_ref());
        report.syntax_errors = syntax_errors;
        return Ok((report, Vec::new()));
    }
    let fixes = lint::fix::fix(&parsed, &options, facts.as_ref())?;
    let fixed = fixes.iter().map(|f| lint::parse(f.source())).collect::<Result<Vec<_>, _>>()?;
    Ok((lint::lint(&fixed, &options, facts.as_ref()), fixes))
}

/// Replaces `path`'s text with `text` through a file beside it renamed over it, so that an
/// interrupted fix leaves the old file or the new one, never half of one.
fn write_in_place(path: &Path, text: &str) -> Result<(), Error> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io("writing beside", path, e))?;
    std::io::Write::write_all(&mut temp, text.as_bytes()).map_err(|e| Error::io("writing", temp.path(), e))?;
    if let Ok(meta) = std::fs::metadata(path) {
        // Keep the file's permissions; a failure here leaves the temporary file's, which is no harm.
        let _ = std::fs::set_permissions(temp.path(), meta.permissions());
    }
    temp.persist(path).map_err(|e| Error::io("replacing", path, e.error))?;
    Ok(())
}

/// The files the arguments name, in order.
fn read_sources(paths: &[PathBuf]) -> Result<Vec<SourceFile>, Error> {
    let mut sources = Vec::new();
    for path in paths {
        match PathOrStdio::from(path.as_os_str()) {
            PathOrStdio::Stdio => {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .map_err(|e| Error::new(ErrorKind::Io, "reading standard input").with_source(e))?;
                sources.push(SourceFile { name: "-".into(), text });
            }
            PathOrStdio::Path(path) => {
                for file in files_of(&path)? {
                    let text = std::fs::read_to_string(&file).map_err(|e| Error::io("reading", &file, e))?;
                    sources.push(SourceFile { name: file.display().to_string(), text });
                }
            }
        }
    }
    Ok(sources)
}

/// A file is itself; a folder is its migrations ([`pgsafe::dryrun::folder_migrations`]).
fn files_of(path: &Path) -> Result<Vec<PathBuf>, Error> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io("reading", path, e))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let files = pgsafe::dryrun::folder_migrations(path)?;
    if files.is_empty() {
        return Err(Error::new(ErrorKind::InvalidInput, format!("`{}` holds no `.sql` file to lint", path.display()))
            .with_hint(pgsafe::dryrun::FOLDER_LAYOUTS));
    }
    Ok(files)
}

/// Compiler-style diagnostics, then the allowed findings and a summary line.
fn text(report: &LintReport) -> String {
    let mut out = String::new();
    for f in &report.findings {
        out.push_str(&format!("{}:{}:{}: {}[{}]: {}\n", f.file, f.line, f.column, f.level, f.rule, f.message));
        out.push_str(&format!("  | {}\n", f.statement));
        if let Some(lock) = f.lock {
            out.push_str(&format!("  = lock: {lock}, {}\n", rewrites(f)));
        }
        out.push_str(&format!("  = why: {}\n  = help: {}\n\n", f.why, f.help));
    }
    for a in &report.allowed {
        let f = &a.finding;
        out.push_str(&format!("{}:{}:{}: allowed[{}]: {}\n", f.file, f.line, f.column, f.rule, a.reason));
    }
    out.push_str(&format!(
        "{} errors, {} warnings, {} hints, {} allowed\n",
        report.count(Level::Error),
        report.count(Level::Warning),
        report.count(Level::Hint),
        report.allowed.len()
    ));
    out
}

fn rewrites(f: &Finding) -> &'static str {
    match f.rewrites {
        lint::Rewrites::None => "no scan or rewrite",
        lint::Rewrites::Scan => "scans the table",
        lint::Rewrites::Rewrite => "rewrites the table",
    }
}

/// GitHub workflow commands: one annotation per finding.
fn github(report: &LintReport) -> String {
    let property = |s: &str| escape_data(s).replace(':', "%3A").replace(',', "%2C");
    let mut out = String::new();
    for f in &report.findings {
        let command = match f.level {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Hint => "notice",
        };
        out.push_str(&format!(
            "::{command} file={},line={},col={},title={}::{}\n",
            property(&f.file),
            f.line,
            f.column,
            property(&format!("pgsafe {}", f.rule)),
            escape_data(&format!("{} (help: {})", f.message, f.help))
        ));
    }
    for e in &report.syntax_errors {
        out.push_str(&format!(
            "::error file={},line={},col={},title={}::{}\n",
            property(&e.file),
            e.line,
            e.column,
            property("pgsafe syntax error"),
            escape_data(&format!("{} (the file was not linted)", e.message))
        ));
    }
    out
}

fn escape_data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// SARIF 2.1.0 for code scanning: every rule with its help, a result per finding, allowed findings as
/// results suppressed in source with their reason.
fn sarif(report: &LintReport) -> serde_json::Value {
    let level = |l: Level| match l {
        Level::Error => "error",
        Level::Warning => "warning",
        Level::Hint => "note",
    };
    let rules: Vec<serde_json::Value> = RULES
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "shortDescription": { "text": r.what },
                "fullDescription": { "text": r.why },
                "help": { "text": r.help },
                "defaultConfiguration": { "level": level(r.level) },
                "properties": { "lock": r.lock, "rewrites": r.rewrites },
            })
        })
        .collect();
    let result = |f: &Finding| {
        json!({
            "ruleId": f.rule,
            "ruleIndex": RULES.iter().position(|r| r.id == f.rule),
            "level": level(f.level),
            "message": { "text": f.message },
            "locations": [{
                "physicalLocation": {
                    "artifactLocation": { "uri": f.file },
                    "region": { "startLine": f.line, "startColumn": f.column },
                }
            }],
        })
    };
    let mut results: Vec<serde_json::Value> = report.findings.iter().map(result).collect();
    for a in &report.allowed {
        let mut r = result(&a.finding);
        r["suppressions"] = json!([{ "kind": "inSource", "justification": a.reason }]);
        results.push(r);
    }
    // A file the parser refused: a result of no rule of lint's, at the place the parser stopped.
    for e in &report.syntax_errors {
        results.push(json!({
            "ruleId": "syntax-error",
            "level": "error",
            "message": { "text": format!("{} (the file was not linted)", e.message) },
            "locations": [{
                "physicalLocation": {
                    "artifactLocation": { "uri": e.file },
                    "region": { "startLine": e.line, "startColumn": e.column },
                }
            }],
        }));
    }
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "pgsafe",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "results": results,
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_annotations_escape_what_would_end_their_fields() {
        assert_eq!(escape_data("50%\nnext"), "50%25%0Anext");
        let report = lint::lint_text("a,b:c.sql", "TRUNCATE t;", &LintOptions::default()).unwrap();
        let out = github(&report);
        assert!(out.contains("::error file=a%2Cb%3Ac.sql,line=1,col=1,title=pgsafe truncate::"), "{out}");
    }
}
