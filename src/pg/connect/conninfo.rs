//! Reading connection strings as libpq does: `postgres://` and `postgresql://` URIs, `key=value`
//! strings, or a plain database name. Errors give the reason and never the string, which may hold a
//! password.

/// `value` quoted for a `key=value` connection string.
pub(super) fn quote_conninfo_value(value: &str) -> String {
    format!("'{}'", value.replace('\\', r"\\").replace('\'', r"\'"))
}

/// The `(keyword, value)` pairs of a connection string: a URI, `key=value` pairs, or a database name.
///
/// The error is a reason without the string itself, which may hold a password.
pub(super) fn parse_conninfo(s: &str) -> std::result::Result<Vec<(String, String)>, String> {
    if let Some(rest) = s.strip_prefix("postgresql://").or_else(|| s.strip_prefix("postgres://")) {
        parse_uri(rest)
    } else if s.contains('=') {
        parse_key_values(s)
    } else {
        Ok(vec![("dbname".to_owned(), s.to_owned())])
    }
}

/// libpq's `key=value` form: spaces between pairs and around `=`, values in single quotes when they
/// hold spaces, `\` escaping the next character.
fn parse_key_values(s: &str) -> std::result::Result<Vec<(String, String)>, String> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(pairs);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_whitespace() && *c != '=') {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            // Not the text itself: it may be the second half of a password with a space in it.
            return Err(match pairs.last() {
                Some((previous, _)) => format!(
                    "text without `=` after the value of `{previous}` (quote values that hold \
                     spaces: `{previous}='...'`)"
                ),
                None => "it does not start with `key=value`".to_owned(),
            });
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => return Err(format!("unterminated quoted value for `{key}`")),
                    },
                    Some('\'') => break,
                    Some(c) => value.push(c),
                    None => return Err(format!("unterminated quoted value for `{key}`")),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    if let Some(escaped) = chars.next() {
                        value.push(escaped);
                    }
                } else {
                    value.push(c);
                }
            }
        }
        pairs.push((key, value));
    }
}

/// libpq's URI form after the scheme:
/// `[user[:password]@][host][:port][,host[:port]...][/dbname][?key=value&...]`, percent-encoded.
fn parse_uri(rest: &str) -> std::result::Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();

    // Like libpq, the credentials are whatever comes before an `@` that precedes any `/`.
    let rest = match rest.find(['@', '/']) {
        Some(at) if rest[at..].starts_with('@') => {
            let (user, password) = match rest[..at].split_once(':') {
                Some((user, password)) => (user, Some(password)),
                None => (&rest[..at], None),
            };
            pairs.push(("user".to_owned(), percent_decode(user, "user name")?));
            if let Some(password) = password {
                pairs.push(("password".to_owned(), percent_decode(password, "password")?));
            }
            &rest[at + 1..]
        }
        _ => rest,
    };

    let host_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (hostspec, rest) = rest.split_at(host_end);
    if !hostspec.is_empty() {
        let mut hosts = Vec::new();
        let mut ports = Vec::new();
        for spec in hostspec.split(',') {
            let (host, port) = if let Some(bracketed) = spec.strip_prefix('[') {
                let (host, after) = bracketed.split_once(']').ok_or("unterminated `[` in an IPv6 host address")?;
                let port = match after {
                    "" => "",
                    after => after.strip_prefix(':').ok_or("unexpected text after an IPv6 host address")?,
                };
                (host.to_owned(), port)
            } else {
                match spec.split_once(':') {
                    Some((host, port)) => (percent_decode(host, "host")?, port),
                    None => (percent_decode(spec, "host")?, ""),
                }
            };
            hosts.push(host);
            ports.push(port);
        }
        if hosts.iter().any(|h| !h.is_empty()) {
            pairs.push(("host".to_owned(), hosts.join(",")));
        }
        if ports.iter().any(|p| !p.is_empty()) {
            pairs.push(("port".to_owned(), ports.join(",")));
        }
    }

    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    if let Some(dbname) = path.strip_prefix('/')
        && !dbname.is_empty()
    {
        pairs.push(("dbname".to_owned(), percent_decode(dbname, "database name")?));
    }
    for param in query.into_iter().flat_map(|q| q.split('&')) {
        if param.is_empty() {
            continue;
        }
        let (key, value) = param.split_once('=').ok_or_else(|| format!("URI parameter `{}` has no `=value`", param))?;
        let key = percent_decode(key, "parameter name")?;
        let value = percent_decode(value, &format!("`{key}` parameter"))?;
        // libpq takes JDBC's `ssl=true` too.
        if key == "ssl" {
            if value != "true" {
                return Err("URI parameter `ssl` takes only `true`".to_owned());
            }
            pairs.push(("sslmode".to_owned(), "require".to_owned()));
        } else {
            pairs.push((key, value));
        }
    }
    Ok(pairs)
}

/// `s` with `%XX` escapes decoded; `what` names the part for the error, which never shows `s`.
fn percent_decode(s: &str, what: &str) -> std::result::Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let digits = bytes
                .get(i + 1..i + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .ok_or_else(|| format!("invalid percent-encoding in the URI's {what}"))?;
            out.push(digits);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("the URI's {what} is not UTF-8 once decoded"))
}
#[cfg(test)]
mod tests {
    use super::super::SslMode;
    use super::super::settings::Origin;
    use super::super::testing::*;
    use crate::error::ErrorKind;
    use std::time::Duration;

    #[test]
    fn uris_are_parsed_like_libpq() {
        let options = ok(
            Some(
                "postgresql://u%40x:p%3Aw%40d@db.example.com:6000/my%20db?sslmode=disable&application_name=nightly&connect_timeout=7",
            ),
            NO_FLAGS,
            &[],
        );
        assert_eq!(options.describe(), "u@x@db.example.com:6000/my db");
        assert_eq!(password(&options), Some("p:w@d"));
        assert_eq!(options.ssl_mode(), SslMode::Disable);
        assert_eq!(options.config.get_application_name(), Some("nightly"));
        assert_eq!(options.config.get_connect_timeout(), Some(&Duration::from_secs(7)));

        let options = ok(Some("postgres://%2Ftmp%2Fsock/db"), NO_FLAGS, &[]);
        assert_eq!(options.describe(), "osuser@/tmp/sock:5432/db");

        let options = ok(Some("postgres://[::1]:6000,other:6001/db"), NO_FLAGS, &[]);
        assert_eq!(options.describe(), "osuser@[::1]:6000,other:6001/db");

        let options = ok(Some("postgresql://"), NO_FLAGS, &[("PGHOST", "envhost")]);
        assert_eq!(options.describe(), "osuser@envhost:5432/osuser");

        let options = ok(Some("postgres://h/db?ssl=true"), NO_FLAGS, &[]);
        assert_eq!(options.ssl_mode(), SslMode::Require);

        let options = ok(Some("postgres://h?host=/tmp/elsewhere"), NO_FLAGS, &[]);
        assert_eq!(options.describe(), "osuser@/tmp/elsewhere:5432/osuser");
    }

    #[test]
    fn key_value_strings_are_parsed_like_libpq() {
        let options = ok(Some(r"host = h1,h2  port=1,2 user='my user' password=it\'s dbname=a\ b"), NO_FLAGS, &[]);
        assert_eq!(password(&options), Some("it's"));
        assert_eq!(options.describe(), "my user@h1:1,h2:2/a b");

        let options = ok(Some(r"password='a \'quoted\' \\ word' user=u"), NO_FLAGS, &[]);
        assert_eq!(password(&options), Some(r"a 'quoted' \ word"));
        assert_eq!(options.password_origin, Some(Origin::ConnInfo));
        assert!(options.passfile.is_none(), "a given password skips the file");

        // Later repeats win, and an empty value means the default.
        let options = ok(Some("dbname=first dbname=second host="), NO_FLAGS, &[]);
        assert_eq!(options.describe(), "osuser@localhost:5432/second");

        let options = ok(Some("hostaddr=127.0.0.1 port=6000"), NO_FLAGS, &[]);
        assert_eq!(options.describe(), "osuser@127.0.0.1:6000/osuser");
        assert!(options.config.get_hosts().is_empty(), "no default host beside a hostaddr");
    }

    #[test]
    fn bad_connection_strings_name_the_bad_part_and_never_the_password() {
        let cases: &[(&str, &str)] = &[
            ("host=h password='s3cr3t", "invalid connection string: unterminated quoted value for `password`"),
            (
                "host=h password=s3cr3t s3cr3t",
                "invalid connection string: text without `=` after the value of `password` (quote values that hold spaces: `password='...'`)",
            ),
            (
                "host=h password=s3cr3t s3cr3t=s3cr3t",
                "unknown connection option after `password` in the connection string",
            ),
            ("s3cr3t host=h", "invalid connection string: it does not start with `key=value`"),
            (
                "postgres://u:s3cr3t%zz@h/db",
                "invalid connection string: invalid percent-encoding in the URI's password",
            ),
            ("postgres://u:s3cr3t@[::1/db", "invalid connection string: unterminated `[` in an IPv6 host address"),
            (
                "password=s3cr3t sslcert=client.crt",
                "connection option `sslcert` in the connection string is not supported by pgsafe",
            ),
            ("hots=h password=s3cr3t", "unknown connection option `hots` in the connection string"),
            (
                "postgres://u:s3cr3t@h/db?sslmode=verify-everything",
                "unknown sslmode `verify-everything` in the connection string (expected `disable`, `allow`, `prefer`, `require`, `verify-ca` or `verify-full`)",
            ),
            ("password=s3cr3t keepalives=often", "invalid `keepalives` `often` in the connection string"),
            ("password=s3cr3t connect_timeout=soon", "invalid `connect_timeout` `soon` in the connection string"),
            ("password=s3cr3t hostaddr=db.example.com", "invalid `hostaddr` `db.example.com` in the connection string"),
        ];
        for (conninfo, message) in cases {
            let e = err(Some(conninfo), &[]);
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{conninfo}");
            assert_eq!(e.to_string(), *message, "{conninfo}");
            let everything = format!("{e} {e:?} {:?}", e.hint());
            assert!(!everything.contains("s3cr3t"), "{conninfo}: {everything}");
        }
        let e = err(None, &[("PGPORT", "54x")]);
        assert_eq!(e.to_string(), "invalid port `54x` in env `PGPORT`");
    }
}
