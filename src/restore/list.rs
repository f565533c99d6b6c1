//! `restore --list` and `-L`: a restore plan's items one per line, in the order the restore runs them,
//! and the reading of such a list after a user edited it (a line starting with `;` is left out, as in
//! pg_restore). One module writes and reads the format, so the two cannot drift apart.
//!
//! ```text
//! ; archive of database `shop` (15.18), dumped 2026-11-21T10:00:00Z by pgsafe 0.1.0
//! 12; pre-data; TABLE public.orders (owner app)
//! part 3; data; public.orders
//! 14; post-data; INDEX public.orders_pkey (owner app)
//! sequence value; public.orders_id_seq
//! ```

use std::collections::HashSet;

use super::plan::{ObjectStep, RestoreKind, RestorePlan};
use crate::error::{Error, ErrorKind, Result};
use crate::schema::Section;

/// What an edited `restore --list` keeps (`-L FILE`): schema objects by id, parts by id and sequence
/// values by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListSelection {
    pub objects: HashSet<u32>,
    pub parts: HashSet<u32>,
    pub sequences: HashSet<String>,
}

impl ListSelection {
    /// Reads a list; `source` names it in errors.
    pub fn parse(text: &str, source: &str) -> Result<ListSelection> {
        let mut list = ListSelection::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with(';') {
                continue;
            }
            let bad = || {
                Error::new(
                    ErrorKind::InvalidInput,
                    format!("line {} of `{source}` is not a line of `pgsafe restore --list`: `{line}`", n + 1),
                )
                .with_hint("keep the lines `restore --list` printed; put `;` before the ones to leave out")
            };
            let (head, rest) = line.split_once(';').ok_or_else(bad)?;
            if let Some(id) = head.strip_prefix("part ") {
                list.parts.insert(id.trim().parse().map_err(|_| bad())?);
            } else if head == "sequence value" {
                list.sequences.insert(rest.trim().to_string());
            } else {
                list.objects.insert(head.trim().parse().map_err(|_| bad())?);
            }
        }
        Ok(list)
    }
}

/// The plan's items, one per line, in the order the restore runs them.
pub fn list(plan: &RestorePlan) -> String {
    let s = &plan.source;
    let mut out = format!(
        "; archive of database `{}` ({}), dumped {} by {}\n",
        s.database, s.server_version, s.dumped_at, s.tool
    );
    for c in &plan.cycles {
        out.push_str(&format!("; dependency cycle broken by creating `{c}` early\n"));
    }
    if plan.kind == RestoreKind::DataOnly {
        out.push_str("; data only: no schema objects\n");
    }
    let objects = |out: &mut String, steps: &[ObjectStep]| {
        for o in steps {
            let section = match o.section {
                Section::PreData => "pre-data",
                Section::PostData => "post-data",
            };
            let owner = o.owner.as_ref().map(|r| format!(" (owner {r})")).unwrap_or_default();
            out.push_str(&format!("{}; {section}; {}{owner}\n", o.id, o.label));
        }
    };
    objects(&mut out, &plan.pre_data);
    for p in &plan.data {
        out.push_str(&format!("part {}; data; {}\n", p.part, p.table));
    }
    objects(&mut out, &plan.post_data);
    for v in &plan.sequences {
        out.push_str(&format!("sequence value; {}\n", v.name));
    }
    objects(&mut out, &plan.after_privileges);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_keeps_what_is_not_commented_out() {
        let text = "; archive of database `shop`\n12; pre-data; TABLE public.t (owner o)\n;13; pre-data; TABLE public.u\n\
                    part 3; data; public.t\n; part 4; data; public.u\nsequence value; public.t_id_seq\n\n";
        let list = ListSelection::parse(text, "list").unwrap();
        assert_eq!(list.objects, [12].into());
        assert_eq!(list.parts, [3].into());
        assert_eq!(list.sequences, ["public.t_id_seq".to_string()].into());
        let e = ListSelection::parse("12; pre-data; TABLE t\nTABLE u\n", "my.list").unwrap_err();
        assert!(e.to_string().contains("line 2 of `my.list`"), "{e}");
        assert!(ListSelection::parse("x; pre-data; TABLE t\n", "l").is_err());
    }
}
