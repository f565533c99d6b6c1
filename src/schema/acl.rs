//! Turns an object's ACL into the `GRANT` and `REVOKE` statements that recreate it exactly, array order
//! included, from the privileges a new object starts with.

use crate::pg::quote_ident;

/// One `aclitem`: `grantee=privileges/grantor`, an empty grantee meaning PUBLIC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AclItem {
    pub grantee: String,
    pub grantor: String,
    /// Privilege letters, each with whether it carries the grant option.
    pub privileges: Vec<(char, bool)>,
}

impl AclItem {
    /// Parses aclitem's text form. Role names with special characters come double-quoted.
    pub fn parse(text: &str) -> Option<AclItem> {
        let (grantee, rest) = take_role(text, '=')?;
        let (privs, grantor_text) = rest.split_once('/')?;
        let (grantor, tail) = take_role(grantor_text, '\0')?;
        if !tail.is_empty() {
            return None;
        }
        let mut privileges = Vec::new();
        let mut chars = privs.chars().peekable();
        while let Some(c) = chars.next() {
            let option = chars.peek() == Some(&'*');
            if option {
                chars.next();
            }
            privileges.push((c, option));
        }
        Some(AclItem { grantee, grantor, privileges })
    }
}

/// Reads a role name up to `end` (or the end of the text), undoing aclitem's quoting.
fn take_role(text: &str, end: char) -> Option<(String, &str)> {
    let mut name = String::new();
    let mut chars = text.char_indices().peekable();
    if text.starts_with('"') {
        chars.next();
        while let Some((_, c)) = chars.next() {
            if c == '"' {
                if chars.peek().map(|(_, c)| *c) == Some('"') {
                    chars.next();
                    name.push('"');
                } else {
                    break;
                }
            } else {
                name.push(c);
            }
        }
        let rest = match chars.next() {
            Some((i, c)) if c == end => &text[i + c.len_utf8()..],
            None => "",
            Some(_) => return None,
        };
        return Some((name, rest));
    }
    match text.find(end) {
        Some(i) if end != '\0' => Some((text[..i].to_string(), &text[i + end.len_utf8()..])),
        _ if end == '\0' => Some((text.to_string(), "")),
        _ => None,
    }
}

fn privilege_name(letter: char) -> Option<&'static str> {
    Some(match letter {
        'r' => "SELECT",
        'a' => "INSERT",
        'w' => "UPDATE",
        'd' => "DELETE",
        'D' => "TRUNCATE",
        'x' => "REFERENCES",
        't' => "TRIGGER",
        'm' => "MAINTAIN",
        'X' => "EXECUTE",
        'U' => "USAGE",
        'C' => "CREATE",
        'c' => "CONNECT",
        'T' => "TEMPORARY",
        's' => "SET",
        'A' => "ALTER SYSTEM",
        _ => return None,
    })
}

fn role(name: &str) -> String {
    if name.is_empty() { "PUBLIC".to_string() } else { quote_ident(name) }
}

/// The statements that take an object from `default` privileges to `acl`. `target` is what follows
/// `ON` (`TABLE public.t`); `columns` is `Some("(c)")` for a column's privileges. `owner` is the
/// object's owner: grants it made need no role switch, others are made as their grantor, as pg_dump does.
pub(crate) fn statements(
    target: &str,
    columns: Option<&str>,
    acl: &[String],
    default: &[String],
    owner: Option<&str>,
) -> Result<Vec<String>, String> {
    if acl == default {
        return Ok(Vec::new());
    }
    let parse = |items: &[String]| -> Result<Vec<AclItem>, String> {
        items
            .iter()
            .map(|t| AclItem::parse(t).ok_or_else(|| format!("unreadable ACL item `{t}` on {target}")))
            .collect()
    };
    let (acl, default) = (parse(acl)?, parse(default)?);
    // Every privilege the kind has on the source's server is what its owner starts with. An item that
    // holds them all is granted as ALL, as pg_dump grants it: restored into a newer server, it also takes
    // the privileges that version added (MAINTAIN on tables, from 17).
    let mut full: Vec<char> = default
        .iter()
        .filter(|d| owner == Some(d.grantee.as_str()))
        .flat_map(|d| d.privileges.iter().map(|(p, _)| *p))
        .collect();
    full.sort_unstable();
    let mut out = Vec::new();
    // Revoke what a new object starts with, then grant the items in their order, which rebuilds the
    // array exactly: each GRANT of a new grantee and grantor appends one item.
    let cols = columns.map(|c| format!(" {c}")).unwrap_or_default();
    let mut revoked: Vec<&str> = Vec::new();
    for item in &default {
        if !revoked.contains(&item.grantee.as_str()) {
            revoked.push(&item.grantee);
            out.push(format!("REVOKE ALL{cols} ON {target} FROM {};", role(&item.grantee)));
        }
    }
    for item in &acl {
        let mut plain = Vec::new();
        let mut with_option = Vec::new();
        let mut letters: Vec<char> = item.privileges.iter().map(|(p, _)| *p).collect();
        letters.sort_unstable();
        let options: Vec<bool> = item.privileges.iter().map(|(_, o)| *o).collect();
        let all = columns.is_none() && !full.is_empty() && letters == full && options.windows(2).all(|w| w[0] == w[1]);
        if all {
            if options[0] { with_option.push("ALL") } else { plain.push("ALL") }
        }
        for (letter, option) in item.privileges.iter().filter(|_| !all) {
            let name = privilege_name(*letter).ok_or_else(|| format!("unknown privilege `{letter}` on {target}"))?;
            if *option { with_option.push(name) } else { plain.push(name) }
        }
        let switch = owner != Some(item.grantor.as_str());
        let mut grant = |names: &[&str], suffix: &str| {
            if names.is_empty() {
                return;
            }
            let list = names.iter().map(|n| format!("{n}{cols}")).collect::<Vec<_>>().join(", ");
            let sql = format!("GRANT {list} ON {target} TO {}{suffix};", role(&item.grantee));
            if switch {
                out.push(format!(
                    "SET SESSION AUTHORIZATION {}; {sql} RESET SESSION AUTHORIZATION;",
                    role(&item.grantor)
                ));
            } else {
                out.push(sql);
            }
        };
        grant(&plain, "");
        grant(&with_option, " WITH GRANT OPTION");
    }
    Ok(out)
}

/// [`statements`] made for an object owned by `owner`, rewritten for a restore that leaves owners out
/// (`--no-owner`), where the restoring role owns the object: it takes the former owner's place in the
/// privileges the owner held and granted itself (revoked and granted again, which keeps the array's order),
/// as pg_restore's result has it. The former owner keeps nothing of an object it no longer owns, where
/// replaying its own `GRANT ALL` would hand it every privilege on it. What others granted, to anyone, stays.
pub(crate) fn for_new_owner(statements: &[String], owner: &str) -> Vec<String> {
    statements
        .iter()
        .map(|sql| match owners(sql, owner) {
            Some((head, end)) => format!("{head}{}", OWNERS_ENDS[end].replace("{}", "CURRENT_USER")),
            None => sql.clone(),
        })
        .collect()
}

/// [`statements`] made for an object owned by `owner`, for a restore that leaves owners out and does not
/// make the object (the `public` schema, which the new database has): its owner there stays, with the
/// privileges it holds, so the former owner's own statements are left out and the rest kept, as
/// pg_restore's result has it. Granting the restoring role what the former owner held would add an entry
/// the source never had.
pub(crate) fn for_kept_owner(statements: &[String], owner: &str) -> Vec<String> {
    statements.iter().filter(|sql| owners(sql, owner).is_none()).cloned().collect()
}

/// How a statement of an owner's own ends, `{}` standing for the owner.
const OWNERS_ENDS: [&str; 3] = [" FROM {};", " TO {};", " TO {} WITH GRANT OPTION;"];

/// `sql` before its grantee, and which of [`OWNERS_ENDS`] it ends with, when it is a `GRANT` or `REVOKE`
/// of `owner`'s own (to or from it, made as the owner: statements made as another grantor switch to it
/// first, and are that grantor's).
fn owners<'a>(sql: &'a str, owner: &str) -> Option<(&'a str, usize)> {
    if sql.starts_with("SET SESSION AUTHORIZATION ") || !(sql.starts_with("GRANT ") || sql.starts_with("REVOKE ")) {
        return None;
    }
    let owner = role(owner);
    OWNERS_ENDS
        .iter()
        .enumerate()
        .find_map(|(i, end)| sql.strip_suffix(end.replace("{}", &owner).as_str()).map(|head| (head, i)))
}

/// `create`, the statements of a default ACL (`ALTER DEFAULT PRIVILEGES FOR ROLE r ...`), for a restore
/// that leaves owners out: as they are where the restoring role may act as `r` (a member of it, or a
/// superuser), else for the restoring role itself, which takes `r`'s place as it takes every owner's: the
/// tables it makes later get the grants `r`'s did. pg_restore runs them as they are and fails where the
/// restoring role is not a member of `r`.
pub(crate) fn default_acl_for_restoring_role(create: &str) -> String {
    const PREFIX: &str = "ALTER DEFAULT PRIVILEGES FOR ROLE ";
    let Some(rest) = create.strip_prefix(PREFIX) else { return create.to_owned() };
    let Some((ident, name)) = crate::sql::leading_ident(rest) else { return create.to_owned() };
    let of_role = format!("{PREFIX}{ident}");
    // Every statement of the entry starts with the same prefix, one a line.
    let own: Vec<String> = create
        .lines()
        .map(|line| match line.strip_prefix(of_role.as_str()) {
            Some(tail) => format!("ALTER DEFAULT PRIVILEGES{tail}"),
            None => line.to_owned(),
        })
        .collect();
    format!(
        "DO $pgsafe$BEGIN IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = {role} \
         AND pg_catalog.pg_has_role(rolname, 'MEMBER')) THEN EXECUTE {as_is}; ELSE EXECUTE {own}; END IF; END$pgsafe$;",
        role = crate::sql::quote_literal(&name),
        as_is = crate::sql::quote_literal(create.trim_end()),
        own = crate::sql::quote_literal(own.join("\n").trim_end()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_items() {
        let item = AclItem::parse("alice=arw*/bob").unwrap();
        assert_eq!(item.grantee, "alice");
        assert_eq!(item.grantor, "bob");
        assert_eq!(item.privileges, vec![('a', false), ('r', false), ('w', true)]);
        let public = AclItem::parse("=U/postgres").unwrap();
        assert_eq!(public.grantee, "");
        let quoted = AclItem::parse("\"we\"\"ird=\"=r/\"x/y\"").unwrap();
        assert_eq!(quoted.grantee, "we\"ird=");
        assert_eq!(quoted.grantor, "x/y");
        assert!(AclItem::parse("nonsense").is_none());
    }

    #[test]
    fn default_privileges_give_no_statements() {
        let d = vec!["o=arwdDxt/o".to_string()];
        assert!(statements("TABLE t", None, &d, &d, Some("o")).unwrap().is_empty());
    }

    #[test]
    fn grants_rebuild_the_array_in_order() {
        let default = vec!["=X/o".to_string(), "o=X/o".to_string()];
        let acl = vec!["o=X/o".to_string(), "a=X*/o".to_string(), "b=X/a".to_string()];
        let s = statements("FUNCTION f()", None, &acl, &default, Some("o")).unwrap();
        assert_eq!(
            s,
            vec![
                "REVOKE ALL ON FUNCTION f() FROM PUBLIC;",
                "REVOKE ALL ON FUNCTION f() FROM o;",
                "GRANT ALL ON FUNCTION f() TO o;",
                "GRANT ALL ON FUNCTION f() TO a WITH GRANT OPTION;",
                "SET SESSION AUTHORIZATION a; GRANT ALL ON FUNCTION f() TO b; RESET SESSION AUTHORIZATION;",
            ]
        );
    }

    #[test]
    fn every_privilege_is_all_and_fewer_are_listed() {
        let default = vec!["o=arwdDxt/o".to_string()];
        let acl = vec!["o=arwdDxt/o".to_string(), "r=r/o".to_string(), "w=a*r*w*d*D*x*t*/o".to_string()];
        let s = statements("TABLE t", None, &acl, &default, Some("o")).unwrap();
        assert_eq!(
            s,
            vec![
                "REVOKE ALL ON TABLE t FROM o;",
                "GRANT ALL ON TABLE t TO o;",
                "GRANT SELECT ON TABLE t TO r;",
                "GRANT ALL ON TABLE t TO w WITH GRANT OPTION;",
            ]
        );
    }

    #[test]
    fn without_owners_a_default_acl_is_the_restoring_roles_where_it_cannot_act_as_the_role() {
        let create = "ALTER DEFAULT PRIVILEGES FOR ROLE \"O \"\"w\" IN SCHEMA s GRANT ALL ON TABLES TO a;\n\
                      ALTER DEFAULT PRIVILEGES FOR ROLE \"O \"\"w\" IN SCHEMA s GRANT SELECT ON TABLES TO b;";
        assert_eq!(
            default_acl_for_restoring_role(create),
            "DO $pgsafe$BEGIN IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'O \"w' \
             AND pg_catalog.pg_has_role(rolname, 'MEMBER')) THEN EXECUTE 'ALTER DEFAULT PRIVILEGES FOR ROLE \"O \"\"w\" \
             IN SCHEMA s GRANT ALL ON TABLES TO a;\nALTER DEFAULT PRIVILEGES FOR ROLE \"O \"\"w\" IN SCHEMA s GRANT SELECT \
             ON TABLES TO b;'; ELSE EXECUTE 'ALTER DEFAULT PRIVILEGES IN SCHEMA s GRANT ALL ON TABLES TO a;\nALTER DEFAULT \
             PRIVILEGES IN SCHEMA s GRANT SELECT ON TABLES TO b;'; END IF; END$pgsafe$;"
        );
        assert!(
            default_acl_for_restoring_role("ALTER DEFAULT PRIVILEGES FOR ROLE app REVOKE ALL ON TYPES FROM PUBLIC;")
                .contains("ELSE EXECUTE 'ALTER DEFAULT PRIVILEGES REVOKE ALL ON TYPES FROM PUBLIC;'")
        );
    }

    #[test]
    fn without_owners_the_restoring_role_takes_the_owners_place() {
        let default = vec!["=X/o".to_string(), "o=X/o".to_string()];
        let acl = vec![
            "o=X/o".to_string(),
            "a=X*/o".to_string(),
            "b=X/a".to_string(),
            "o=X/a".to_string(),
            "\"o 2\"=X*/o".to_string(),
        ];
        let s = statements("FUNCTION f()", None, &acl, &default, Some("o")).unwrap();
        assert_eq!(
            for_new_owner(&s, "o"),
            vec![
                "REVOKE ALL ON FUNCTION f() FROM PUBLIC;",
                "REVOKE ALL ON FUNCTION f() FROM CURRENT_USER;",
                "GRANT ALL ON FUNCTION f() TO CURRENT_USER;",
                "GRANT ALL ON FUNCTION f() TO a WITH GRANT OPTION;",
                "SET SESSION AUTHORIZATION a; GRANT ALL ON FUNCTION f() TO b; RESET SESSION AUTHORIZATION;",
                // Granted to the former owner by another grantor: that grantor's grant, kept.
                "SET SESSION AUTHORIZATION a; GRANT ALL ON FUNCTION f() TO o; RESET SESSION AUTHORIZATION;",
                "GRANT ALL ON FUNCTION f() TO \"o 2\" WITH GRANT OPTION;",
            ]
        );
        // An object the restore does not make keeps its owner there: the former owner's statements go.
        assert_eq!(
            for_kept_owner(&s, "o"),
            vec![
                "REVOKE ALL ON FUNCTION f() FROM PUBLIC;",
                "GRANT ALL ON FUNCTION f() TO a WITH GRANT OPTION;",
                "SET SESSION AUTHORIZATION a; GRANT ALL ON FUNCTION f() TO b; RESET SESSION AUTHORIZATION;",
                "SET SESSION AUTHORIZATION a; GRANT ALL ON FUNCTION f() TO o; RESET SESSION AUTHORIZATION;",
                "GRANT ALL ON FUNCTION f() TO \"o 2\" WITH GRANT OPTION;",
            ]
        );
        // A quoted owner, and a grant with the option next to one without.
        let default = vec!["\"O w\"=arwdDxt/\"O w\"".to_string()];
        let acl = vec!["\"O w\"=r*w/\"O w\"".to_string()];
        let s = statements("TABLE t", None, &acl, &default, Some("O w")).unwrap();
        assert_eq!(
            for_new_owner(&s, "O w"),
            vec![
                "REVOKE ALL ON TABLE t FROM CURRENT_USER;",
                "GRANT UPDATE ON TABLE t TO CURRENT_USER;",
                "GRANT SELECT ON TABLE t TO CURRENT_USER WITH GRANT OPTION;",
            ]
        );
    }
}
