//! Whether values a migration changed can be computed back from what it left: a change of unit
//! (`price * 100`, seconds to milliseconds, an epoch made a `timestamptz` or the reverse), a local time
//! made an instant in a named time zone (`created AT TIME ZONE 'Europe/Paris'`), a flag made a number, a
//! value put into an array or a document. Such a change loses nothing, though every value is another: the
//! old one is a fixed function of the new.
//!
//! Five kinds of inverse are tried, each on every row:
//! - **a linear function** of the values as numbers (a number as itself; a date or an instant as its epoch;
//!   an interval, on the new side only, as its seconds): every pair of old and new values lies on one line
//!   through the lowest and the highest old value, tested exactly in `numeric` by cross-multiplying (no
//!   division, no rounding), with at least three distinct old values and a slope that is not zero. A
//!   rounding, a truncation or a clamp puts points off the line; two points fit any line, so they prove
//!   nothing. All or nothing: the line is fitted from the data, so a row off it makes it no inverse.
//! - **a time zone**: a `timestamp` made a `timestamptz` (or the reverse) `AT TIME ZONE` a zone that the
//!   migration names in a string, or UTC: the rows whose new value taken back to that zone is the old one
//!   are recovered (a local time repeated at the end of summer time is not, for one of its two instants).
//! - **a table of old and new values** from or to a type with few values (`boolean`, an enum:
//!   [`finite`]).
//! - **what was added**: items appended to an array, the same for every row; keys added to a `jsonb`
//!   object, row by row: a row that kept the values of its keys ([`added`]).
//! - **the path** inside a document, an array or a row where the old value is ([`inside`]).
//!
//! The old values must be the only thing lost: a type whose numbers say less than its values (an interval's
//! months and days as seconds, a float's digits) is not turned into a number on the old side.

use super::observe::measure;
use crate::error::Result;
use crate::pg::{Session, quote_literal, value};

/// The values to compare: each row of `from` (a `FROM` clause's list and conditions, with `WHERE`) pairs an
/// old value (`old`, an expression) with the new one (`new`).
pub(super) struct Pairs<'a> {
    pub from: &'a str,
    pub old: &'a str,
    pub new: &'a str,
    pub old_type: &'a BaseType,
    pub new_type: &'a BaseType,
}

/// A column's type as the comparison needs it: a domain's base type, its category (`N` for numbers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct BaseType {
    pub name: String,
    pub category: String,
}

/// The inverse found, and the old values it does not give back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Recovered {
    /// Old values (not NULL) that the inverse does not give back.
    pub unrecovered: u64,
    /// How the new values are made from the old: `new = 100 × old`, `AT TIME ZONE 'UTC'`.
    pub how: String,
    /// Where the inverse is a rule each row meets or not (keys added to a document: a row that kept the
    /// values of its keys), the condition, over the pair's `old` and `new`, of the rows it gives back; the
    /// others are `unrecovered`. `None`: the inverse holds of every row or of none.
    pub kept: Option<String>,
}

/// One side of a change: the column `name` of `relation`, whose type it has, read as `expr` in a [`Pairs`]'
/// `from`.
pub(super) struct Column<'a> {
    pub relation: &'a str,
    pub name: &'a str,
    pub expr: &'a str,
}

/// [`recover`] of the change from the `old` column to the `new` one, their types read from the catalog;
/// `None` when either column is not there.
pub(super) async fn between(
    s: &Session,
    from: &str,
    old: Column<'_>,
    new: Column<'_>,
    strings: &[String],
) -> Result<Option<Recovered>> {
    let old_type = base_type(s, old.relation, old.name).await?;
    let new_type = base_type(s, new.relation, new.name).await?;
    let (Some(old_type), Some(new_type)) = (&old_type, &new_type) else { return Ok(None) };
    recover(s, &Pairs { from, old: old.expr, new: new.expr, old_type, new_type }, strings).await
}

/// The base type of `relation.column` (a domain's base type; an array is its own type, category `A`).
pub(super) async fn base_type(s: &Session, relation: &str, column: &str) -> Result<Option<BaseType>> {
    const SQL: &str = "SELECT b.typname::text, b.typcategory::text
                       FROM pg_catalog.pg_attribute a
                       JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
                       JOIN pg_catalog.pg_type b ON b.oid = COALESCE(NULLIF(t.typbasetype, 0), t.oid)
                       WHERE a.attrelid = pg_catalog.to_regclass($1) AND a.attname = $2 AND NOT a.attisdropped";
    match s.query(SQL, &[&relation, &column]).await?.first() {
        Some(row) => Ok(Some(BaseType { name: value(row, 0, SQL)?, category: value(row, 1, SQL)? })),
        None => Ok(None),
    }
}

/// Which side of the change a value is on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Old,
    New,
}

/// `expr` as a `numeric` that tells its values apart (a number; a date or an instant as its epoch); on the
/// new side also an interval's seconds, which need not tell intervals apart (`1 mon` and `30 days`): the old
/// value is computed back from the number whatever the new value was. A floating-point number goes through
/// its text, which reads back as the same number: its cast to `numeric` keeps 15 digits (6 of a `real`),
/// so `1234567.875` made `numeric` would read as the `1234570` a type change left of it.
fn number(ty: &BaseType, expr: &str, side: Side) -> Option<String> {
    match ty.name.as_str() {
        "timestamp" | "timestamptz" | "date" => Some(format!("(EXTRACT(epoch FROM {expr}))::pg_catalog.numeric")),
        "interval" if side == Side::New => Some(format!("(EXTRACT(epoch FROM {expr}))::pg_catalog.numeric")),
        "float4" | "float8" => Some(format!("({expr})::pg_catalog.text::pg_catalog.numeric")),
        _ if ty.category == "N" => Some(format!("({expr})::pg_catalog.numeric")),
        _ => None,
    }
}

/// The query that says whether every pair lies on one line with at least three distinct old values and a
/// slope that is not zero, and if so, its slope and intercept (as text) and how many old values (not NULL)
/// became NULL; no row otherwise.
fn linear_sql(pairs: &Pairs<'_>) -> Option<String> {
    let o = number(pairs.old_type, pairs.old, Side::Old)?;
    let n = number(pairs.new_type, pairs.new, Side::New)?;
    let (old, new, from) = (pairs.old, pairs.new, pairs.from);
    // `NaN` equals itself in numeric and sorts above every number, and an infinity minus itself is `NaN`:
    // a row with either makes the test prove nothing, so it fails it.
    Some(format!(
        "WITH p AS MATERIALIZED (SELECT {o} AS o, {n} AS n FROM {from} AND {old} IS NOT NULL AND {new} IS NOT NULL), \
              lo AS (SELECT o, n FROM p ORDER BY o, n LIMIT 1), \
              hi AS (SELECT o, n FROM p ORDER BY o DESC, n DESC LIMIT 1) \
         SELECT pg_catalog.trim_scale(round((hi.n - lo.n) / (hi.o - lo.o), 12))::text, \
                pg_catalog.trim_scale(round(lo.n - lo.o * (hi.n - lo.n) / (hi.o - lo.o), 12))::text, \
                (SELECT count(*) FROM {from} AND {old} IS NOT NULL AND {new} IS NULL) \
         FROM lo, hi \
         WHERE hi.o > lo.o AND hi.n <> lo.n \
           AND NOT EXISTS (SELECT FROM p WHERE p.o::text IN ('NaN', 'Infinity', '-Infinity') \
                                            OR p.n::text IN ('NaN', 'Infinity', '-Infinity')) \
           AND (SELECT count(DISTINCT o) FROM p) >= 3 \
           AND NOT EXISTS (SELECT FROM p WHERE (p.n - lo.n) * (hi.o - lo.o) <> (hi.n - lo.n) * (p.o - lo.o))"
    ))
}

/// How a linear function reads: `new = 100 × old`, `new = old + 3600` (as numbers: epochs when a side is
/// a date or an instant).
fn linear_how(slope: &str, intercept: &str, pairs: &Pairs<'_>) -> String {
    let times = if slope == "1" { "old".to_owned() } else { format!("{slope} × old") };
    let line = match intercept.strip_prefix('-') {
        _ if intercept == "0" => times,
        Some(minus) => format!("{times} − {minus}"),
        None => format!("{times} + {intercept}"),
    };
    let epoch = |t: &BaseType| matches!(t.name.as_str(), "timestamp" | "timestamptz" | "date" | "interval");
    let unit = if epoch(pairs.old_type) || epoch(pairs.new_type) { ", dates and times as epoch seconds" } else { "" };
    format!("new = {line}{unit}")
}

/// Whether the change is one of a local time and an instant, which a time zone converts.
fn zoned(pairs: &Pairs<'_>) -> bool {
    let (a, b) = (pairs.old_type.name.as_str(), pairs.new_type.name.as_str());
    matches!((a, b), ("timestamp", "timestamptz") | ("timestamptz", "timestamp"))
}

/// The time zones to try: UTC, then those of `strings` (string constants of the migration) that the server
/// knows, at most eight in all.
fn zones(strings: &[String]) -> Vec<String> {
    let mut zones = vec!["UTC".to_owned()];
    for s in strings.iter().rev() {
        let plausible = !s.is_empty() && s.len() <= 64 && !s.chars().any(|c| c.is_whitespace() || c == '\'');
        if plausible && !zones.iter().any(|z| z.eq_ignore_ascii_case(s)) && zones.len() < 8 {
            zones.push(s.clone());
        }
    }
    zones
}

/// The best inverse of the change `pairs` describes, if one gives back any value: linear first (all or
/// nothing), then the table of a type with few values, then what was added or the path inside a
/// structured new value (the one that gives back most), then each time zone (the one that gives back
/// most). `strings`: the string constants of the migration, where a zone would be named (one the server
/// does not know is passed over). The caller runs this in a savepoint.
async fn recover(s: &Session, pairs: &Pairs<'_>, strings: &[String]) -> Result<Option<Recovered>> {
    if let Some(sql) = linear_sql(pairs)
        && let Some(row) = s.query(&sql, &[]).await?.first()
    {
        let slope: String = value(row, 0, &sql)?;
        let intercept: String = value(row, 1, &sql)?;
        let unrecovered: i64 = value(row, 2, &sql)?;
        let how = linear_how(&slope, &intercept, pairs);
        return Ok(Some(Recovered { unrecovered: u64::try_from(unrecovered).unwrap_or(0), how, kept: None }));
    }
    if let Some(found) = finite(s, pairs).await? {
        return Ok(Some(found));
    }
    // Keys added give back the rows that kept their keys' values; a path may give back more (a document
    // put under a key of a new one).
    let added = added(s, pairs).await?;
    if let Some(found) = added.as_ref().filter(|f| f.unrecovered == 0) {
        return Ok(Some(found.clone()));
    }
    if structured(pairs.new_type) {
        let at_path = inside(s, pairs.from, pairs.old, pairs.new).await?.map(|(path, unrecovered)| Recovered {
            unrecovered,
            how: format!("the old value is the new one's item at `{path}`"),
            kept: None,
        });
        return Ok(match (added, at_path) {
            (Some(a), Some(p)) => Some(if p.unrecovered < a.unrecovered { p } else { a }),
            (a, p) => a.or(p),
        });
    }
    if added.is_some() {
        return Ok(added);
    }
    if !zoned(pairs) {
        return Ok(None);
    }
    let (old, new, from) = (pairs.old, pairs.new, pairs.from);
    let mut best: Option<Recovered> = None;
    for zone in zones(strings) {
        let zone = quote_literal(&zone);
        // A zone the server does not know is an error of the whole query, before any row.
        let known = format!("SELECT pg_catalog.now() AT TIME ZONE {zone}");
        match measure(s, s.batch(&known)).await {
            Ok(()) => {}
            Err(e) if e.sqlstate().is_some() => continue,
            Err(e) => return Err(e),
        }
        let sql = format!(
            "SELECT count(*) FROM {from} AND {old} IS NOT NULL AND ({new} AT TIME ZONE {zone}) IS DISTINCT FROM {old}"
        );
        let row = s.query_one(&sql, &[]).await?;
        let unrecovered = u64::try_from(value::<i64, _>(&row, 0, &sql)?).unwrap_or(0);
        if best.as_ref().is_none_or(|b| unrecovered < b.unrecovered) {
            best = Some(Recovered { unrecovered, how: format!("AT TIME ZONE {zone}"), kept: None });
        }
    }
    Ok(best)
}

/// Whether a type holds values inside its values: `json`, `jsonb`, an array, a row type.
pub(super) fn structured(ty: &BaseType) -> bool {
    matches!(ty.category.as_str(), "A" | "C") || matches!(ty.name.as_str(), "json" | "jsonb")
}

/// A change from or to a type with few values (`boolean`, an enum) that gives each old value a new value
/// of its own (`CASE WHEN flag THEN 1 ELSE 0 END`, an enum made text or a number, a number or a code made
/// an enum: `CASE sort WHEN 0 THEN 'Active' WHEN 1 THEN 'Hot' END::sort_type`): the table of old and new
/// values, which the note lists, is the inverse. Old values that became NULL are not given back (a third
/// value of a text made `boolean`), nor are those that became a new value another old value became too
/// (`qty > 0`: 1 to 9 all `true`; a 0 that alone became `false` is); a NULL that became a value, as a
/// filled NULL, loses nothing.
async fn finite(s: &Session, pairs: &Pairs<'_>) -> Result<Option<Recovered>> {
    let few = |ty: &BaseType| ty.name == "bool" || ty.category == "E";
    if !few(pairs.old_type) && !few(pairs.new_type) {
        return Ok(None);
    }
    let (old, new, from) = (pairs.old, pairs.new, pairs.from);
    // `olds`: how many old values each new value came from; only one makes the pair an inverse.
    let sql = format!(
        "WITH p AS MATERIALIZED (SELECT ({old})::text AS o, ({new})::text AS n FROM {from} AND {old} IS NOT NULL), \
              f AS MATERIALIZED (SELECT n, count(DISTINCT o) AS olds FROM p WHERE n IS NOT NULL GROUP BY n) \
         SELECT (SELECT count(DISTINCT o) FROM p WHERE n IS NOT NULL) = (SELECT count(DISTINCT (o, n)) FROM p WHERE n IS NOT NULL), \
                (SELECT count(*) FROM p WHERE n IS NULL) + (SELECT count(*) FROM p JOIN f USING (n) WHERE f.olds > 1), \
                (SELECT pg_catalog.string_agg(o || ' → ' || n, ', ' ORDER BY o) \
                 FROM (SELECT DISTINCT o, n FROM p JOIN f USING (n) WHERE f.olds = 1 LIMIT 10) d)"
    );
    let row = s.query_one(&sql, &[]).await?;
    let function: bool = value(&row, 0, &sql)?;
    let unrecovered: i64 = value(&row, 1, &sql)?;
    let table: Option<String> = value(&row, 2, &sql)?;
    Ok(match (function, table) {
        (true, Some(table)) => {
            Some(Recovered { unrecovered: u64::try_from(unrecovered).unwrap_or(0), how: table, kept: None })
        }
        _ => None,
    })
}

/// What the change added to values of their own type: items appended to an array, the same for every row
/// (`permissions || '{campaigns:get_all}'`), or keys added to a `jsonb` object (`settings || '{"retries":
/// 3}'`, or a key of each row's own). The array's old value is the new one without those items at its end,
/// in every row (a row the change left alone included, which must not end with them). An object's is the
/// new one without the keys the row gained, row by row: a row loses something only when a key it had
/// changed value or is gone (`{"retries": 5}` made `{"retries": 3}`); one that held the key with the same
/// value already is as it was.
async fn added(s: &Session, pairs: &Pairs<'_>) -> Result<Option<Recovered>> {
    if pairs.old_type != pairs.new_type {
        return Ok(None);
    }
    let (old, new, from) = (pairs.old, pairs.new, pairs.from);
    let p = format!(
        "WITH p AS MATERIALIZED (SELECT {old} AS o, {new} AS n FROM {from} AND {old} IS NOT NULL AND {new} IS NOT NULL)"
    );
    let typeof_ = "pg_catalog.jsonb_typeof";
    // Every key of the old object is in the new one with the same value (as `jsonb`: `1.0` and `1` alike).
    let kept = |o: &str, n: &str| {
        format!(
            "({typeof_}({o}) = 'object' AND {typeof_}({n}) = 'object' \
              AND NOT EXISTS (SELECT FROM pg_catalog.jsonb_each({o}) x WHERE ({n}) -> x.key IS DISTINCT FROM x.value))"
        )
    };
    let sql = if pairs.new_type.category == "A" {
        // The items after the old ones, where there are more: one list for all rows.
        let card = "pg_catalog.cardinality";
        format!(
            "{p}, t AS (SELECT DISTINCT n[{card}(o) + 1:{card}(n)] AS items FROM p WHERE {card}(n) > {card}(o)) \
             SELECT (SELECT count(*) FROM t), (SELECT items::text FROM t LIMIT 1), \
                    (SELECT count(*) FROM p, t WHERE (CASE WHEN {card}(n) >= {card}(t.items) \
                          AND (n[{card}(n) - {card}(t.items) + 1:{card}(n)])::text = t.items::text \
                        THEN n[1:{card}(n) - {card}(t.items)] ELSE n END)::text IS DISTINCT FROM o::text)"
        )
    } else if pairs.new_type.name == "jsonb" {
        // `off`: the rows changed otherwise than by keys added.
        format!(
            "{p}, k AS (SELECT DISTINCT x.key FROM p, pg_catalog.jsonb_each(CASE WHEN {typeof_}(p.n) = 'object' THEN p.n END) x \
                        WHERE {typeof_}(p.o) = 'object' AND NOT p.o ? x.key) \
             SELECT (SELECT count(*) FROM k), (SELECT pg_catalog.string_agg(key, ', ' ORDER BY key) FROM k), \
                    (SELECT count(*) FROM p WHERE p.n IS DISTINCT FROM p.o AND NOT {})",
            kept("p.o", "p.n")
        )
    } else {
        return Ok(None);
    };
    let row = s.query_one(&sql, &[]).await?;
    let kinds: i64 = value(&row, 0, &sql)?;
    let what: Option<String> = value(&row, 1, &sql)?;
    let off: i64 = value(&row, 2, &sql)?;
    Ok(match (what, pairs.new_type.category == "A") {
        (Some(items), true) if kinds == 1 && off == 0 => Some(Recovered {
            unrecovered: 0,
            how: format!("the old value is the new one without {items} at its end"),
            kept: None,
        }),
        (Some(keys), false) if (1..=8).contains(&kinds) => Some(Recovered {
            unrecovered: u64::try_from(off).unwrap_or(0),
            how: format!("keys added, {keys}: the old value is the new one without those the row gained"),
            kept: Some(kept(old, new)),
        }),
        _ => None,
    })
}

/// Where inside a structured new value (`json`, `jsonb`, an array, a row type: as `to_jsonb` gives it) the
/// old values are: the path (`{name}`, `{tags,0}`) at which the most rows hold their old value, as a value
/// or as its text, and no row (old value not NULL) another value. A value found at a path where another
/// row holds something else is no copy but a coincidence: two flags of opposite defaults put every
/// boolean somewhere in every row's document. The paths are learned from up to 200 rows; each candidate
/// is then tested on every row. Returns the path and the old values it does not hold (rows without the
/// path, or without the new value).
pub(super) async fn inside(s: &Session, from: &str, old: &str, new: &str) -> Result<Option<(String, u64)>> {
    let at_path = |path: &str| format!("(pg_catalog.to_jsonb({new}) #> {path})");
    let holds = |v: &str| format!("({v} = pg_catalog.to_jsonb({old}) OR {v} #>> '{{}}' = ({old})::text)");
    let candidates = format!(
        "WITH RECURSIVE e(o, ot, path, v) AS ( \
             (SELECT pg_catalog.to_jsonb({old}), ({old})::text, ARRAY[]::text[], pg_catalog.to_jsonb({new}) \
              FROM {from} AND {old} IS NOT NULL AND {new} IS NOT NULL LIMIT 200) \
           UNION ALL \
             SELECT e.o, e.ot, e.path || x.k, x.c FROM e, LATERAL ( \
                 SELECT j.key, j.value FROM pg_catalog.jsonb_each( \
                     CASE WHEN pg_catalog.jsonb_typeof(e.v) = 'object' THEN e.v END) j \
                 UNION ALL \
                 SELECT (a.n - 1)::text, a.value FROM pg_catalog.jsonb_array_elements( \
                     CASE WHEN pg_catalog.jsonb_typeof(e.v) = 'array' THEN e.v END) WITH ORDINALITY a(value, n) \
             ) x(k, c) \
             WHERE pg_catalog.cardinality(e.path) < 8) \
         SELECT path::text FROM e GROUP BY path \
         HAVING count(*) FILTER (WHERE NOT (e.v = e.o OR e.v #>> '{{}}' = e.ot)) = 0 \
         ORDER BY count(*) DESC, path LIMIT 3"
    );
    let mut best: Option<(String, u64)> = None;
    for row in s.query(&candidates, &[]).await? {
        let path: String = value(&row, 0, &candidates)?;
        let v = at_path(&format!("{}::text[]", quote_literal(&path)));
        let sql = format!(
            "SELECT count(*) FILTER (WHERE {v} IS NOT NULL AND NOT {held}), count(*) FILTER (WHERE {v} IS NULL) \
             FROM {from} AND {old} IS NOT NULL",
            held = holds(&v)
        );
        let row = s.query_one(&sql, &[]).await?;
        let (contradicted, absent): (i64, i64) = (value(&row, 0, &sql)?, value(&row, 1, &sql)?);
        let absent = u64::try_from(absent).unwrap_or(0);
        if contradicted == 0 && best.as_ref().is_none_or(|(_, b)| absent < *b) {
            best = Some((path, absent));
        }
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(name: &str, category: &str) -> BaseType {
        BaseType { name: name.into(), category: category.into() }
    }

    #[test]
    fn numbers_dates_and_instants_are_lines_and_an_interval_only_as_the_new_value() {
        let (int, text, ts, iv) = (ty("int4", "N"), ty("text", "S"), ty("timestamptz", "D"), ty("interval", "T"));
        let pairs = |old_type, new_type| Pairs { from: "t WHERE true", old: "o", new: "n", old_type, new_type };
        assert!(linear_sql(&pairs(&int, &int)).is_some());
        assert!(linear_sql(&pairs(&int, &ts)).is_some());
        assert!(linear_sql(&pairs(&int, &iv)).is_some());
        // An interval's seconds do not tell `1 mon` from `30 days`: no line from it.
        assert!(linear_sql(&pairs(&iv, &int)).is_none());
        // Text's digits say more than its number (`007`).
        assert!(linear_sql(&pairs(&text, &int)).is_none());
        let local = ty("timestamp", "D");
        assert!(zoned(&pairs(&local, &ts)) && !zoned(&pairs(&ts, &ts)));
    }

    #[test]
    fn a_line_reads_as_the_formula_that_makes_the_new_values() {
        let (num, ts) = (ty("numeric", "N"), ty("timestamptz", "D"));
        let pairs = Pairs { from: "", old: "", new: "", old_type: &num, new_type: &num };
        assert_eq!(linear_how("100", "0", &pairs), "new = 100 × old");
        assert_eq!(linear_how("1", "-273.15", &pairs), "new = old − 273.15");
        assert_eq!(linear_how("1.8", "32", &pairs), "new = 1.8 × old + 32");
        let epoch = Pairs { new_type: &ts, ..pairs };
        assert_eq!(linear_how("1", "0", &epoch), "new = old, dates and times as epoch seconds");
    }

    #[test]
    fn utc_is_tried_first_and_the_migrations_strings_after_newest_first() {
        let strings: Vec<String> =
            ["Europe/Paris", "a b", "utc", "America/New_York", "it's"].iter().map(|s| s.to_string()).collect();
        assert_eq!(zones(&strings), ["UTC", "America/New_York", "Europe/Paris"]);
        let many: Vec<String> = (0..20).map(|i| format!("z{i}")).collect();
        assert_eq!(zones(&many).len(), 8);
    }
}
