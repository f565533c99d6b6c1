//! The libpq password file (`~/.pgpass`, `PGPASSFILE`, `passfile`): which line gives the password for
//! a connection, and when the file may not be used at all.

use std::io;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use tokio_postgres::Config;
use tokio_postgres::config::Host;

use super::{DEFAULT_PORT, host_label};

/// The password for `config`'s first host from the libpq password file `path`, if it has one and
/// may be used: libpq ignores a file that others can read, and so does pgsafe, with a warning.
pub(super) fn passfile_password(path: &Path, config: &Config) -> Option<String> {
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!("ignoring password file `{}`: {e}", path.display());
            return None;
        }
    };
    if !metadata.is_file() {
        tracing::warn!("ignoring password file `{}`: not a plain file", path.display());
        return None;
    }
    if metadata.permissions().mode() & 0o077 != 0 {
        tracing::warn!(
            "ignoring password file `{}`: it has group or world access; permissions should be \
             u=rw (0600) or less",
            path.display()
        );
        return None;
    }
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            tracing::warn!("ignoring password file `{}`: {e}", path.display());
            return None;
        }
    };

    let host = match (config.get_hosts().first(), config.get_hostaddrs().first()) {
        (Some(host), _) => host_label(host),
        (None, Some(addr)) => addr.to_string(),
        (None, None) => "localhost".to_owned(),
    };
    // A socket folder matches `localhost` as well as itself (libpq: only its default folder).
    let mut hosts = vec![host.as_str()];
    if matches!(config.get_hosts().first(), Some(Host::Unix(_))) {
        hosts.push("localhost");
    }
    let port = config.get_ports().first().copied().unwrap_or(DEFAULT_PORT).to_string();
    pgpass_lookup(&text, &hosts, &port, config.get_dbname().unwrap_or_default(), config.get_user().unwrap_or_default())
}

/// The password of the first line of a password file's `text` that matches: libpq's
/// `hostname:port:database:username:password`, where a field of just `*` matches anything and `\`
/// makes the next character (`:` or `\`) literal. `hosts` are the names the host may match as.
fn pgpass_lookup(text: &str, hosts: &[&str], port: &str, dbname: &str, user: &str) -> Option<String> {
    text.lines().filter(|line| !line.starts_with('#')).find_map(|line| {
        let fields = pgpass_fields(line);
        let [host, port_field, dbname_field, user_field, password, ..] = fields.as_slice() else {
            return None;
        };
        let matches = |field: &PgpassField, want: &str| field.wildcard || field.text == want;
        (hosts.iter().any(|h| matches(host, h))
            && matches(port_field, port)
            && matches(dbname_field, dbname)
            && matches(user_field, user))
        .then(|| password.text.clone())
    })
}

/// One `:`-separated field of a password file line, unescaped.
struct PgpassField {
    text: String,
    /// The field is a bare `*` (an escaped `\*` is a literal star).
    wildcard: bool,
}

fn pgpass_fields(line: &str) -> Vec<PgpassField> {
    let mut fields = Vec::new();
    let mut text = String::new();
    // The field as written, to tell a bare `*` from an escaped one.
    let mut raw = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ':' => {
                fields.push(PgpassField { wildcard: raw == "*", text: std::mem::take(&mut text) });
                raw.clear();
            }
            '\\' => {
                raw.push(c);
                if let Some(escaped) = chars.next() {
                    text.push(escaped);
                    raw.push(escaped);
                }
            }
            c => {
                text.push(c);
                raw.push(c);
            }
        }
    }
    fields.push(PgpassField { wildcard: raw == "*", text });
    fields
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use std::path::Path;

    const PGPASS: &str = r"# a comment:*:*:*:never
db.example.com:5432:app:alice:first
db.example.com:5432:app:alice:second
db.example.com:*:*:bob:bob-anywhere
*:*:*:carol:with\:colon\\and\ escapes
localhost:5432:*:dave:dave-local
/tmp/sock:5432:*:erin:erin-socket
we\:ird:5432:*:frank:frank-escaped
\*:5432:*:gina:gina-literal-star
short:5432:app:alice
";

    fn lookup(hosts: &[&str], port: &str, dbname: &str, user: &str) -> Option<String> {
        pgpass_lookup(PGPASS, hosts, port, dbname, user)
    }

    #[test]
    fn pgpass_first_matching_line_wins() {
        assert_eq!(lookup(&["db.example.com"], "5432", "app", "alice").as_deref(), Some("first"));
        assert_eq!(lookup(&["db.example.com"], "5433", "app", "alice"), None);
        assert_eq!(lookup(&["db.example.com"], "5432", "other", "alice"), None);
        assert_eq!(lookup(&["short"], "5432", "app", "alice"), None, "a line without a password field");
        assert_eq!(lookup(&["# a comment"], "1", "2", "3"), None, "comment lines");
    }

    #[test]
    fn pgpass_wildcards_match_anything_and_escapes_are_literal() {
        assert_eq!(lookup(&["db.example.com"], "6000", "any", "bob").as_deref(), Some("bob-anywhere"));
        assert_eq!(lookup(&["anywhere"], "1", "x", "carol").as_deref(), Some(r"with:colon\and escapes"));
        assert_eq!(lookup(&["we:ird"], "5432", "x", "frank").as_deref(), Some("frank-escaped"));
        // `\*` is a host named `*`, not a wildcard.
        assert_eq!(lookup(&["elsewhere"], "5432", "x", "gina"), None);
        assert_eq!(lookup(&["*"], "5432", "x", "gina").as_deref(), Some("gina-literal-star"));
    }

    #[test]
    fn pgpass_unix_sockets_match_localhost_and_their_folder() {
        let config = |host: &str, user: &str| {
            let mut config = Config::new();
            config.host(host).port(5432).user(user).dbname("app");
            config
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("pgpass");
        std::fs::write(&path, PGPASS).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");

        assert_eq!(passfile_password(&path, &config("/var/run/postgresql", "dave")).as_deref(), Some("dave-local"));
        assert_eq!(passfile_password(&path, &config("/tmp/sock", "erin")).as_deref(), Some("erin-socket"));
        // Over TCP, `localhost` is just a host name.
        assert_eq!(passfile_password(&path, &config("127.0.0.1", "dave")), None);
        assert_eq!(passfile_password(&path, &config("localhost", "dave")).as_deref(), Some("dave-local"));
    }

    #[test]
    fn pgpass_readable_by_others_is_ignored() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("pgpass");
        std::fs::write(&path, "*:*:*:*:pw\n").expect("write");
        let mut config = Config::new();
        config.host("db").port(5432).user("u").dbname("d");

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert_eq!(passfile_password(&path, &config), None);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        assert_eq!(passfile_password(&path, &config), None);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert_eq!(passfile_password(&path, &config).as_deref(), Some("pw"));
        assert_eq!(passfile_password(&dir.path().join("missing"), &config), None);
    }

    #[test]
    fn the_passfile_comes_from_the_options_then_pgpassfile_then_home() {
        let options = ok(Some("host=db passfile=/x/pass"), NO_FLAGS, &[("PGPASSFILE", "/y/pass")]);
        assert_eq!(options.passfile.as_deref(), Some(Path::new("/x/pass")));
        let options = ok(Some("host=db"), NO_FLAGS, &[("PGPASSFILE", "/y/pass")]);
        assert_eq!(options.passfile.as_deref(), Some(Path::new("/y/pass")));
        let options = ok(Some("host=db"), NO_FLAGS, &[("HOME", "/home/z")]);
        assert_eq!(options.passfile.as_deref(), Some(Path::new("/home/z/.pgpass")));
    }
}
