//! A sequence against the column it fills, as `pgsafe check` and the dry run both judge it: the value it
//! gives next, and whether that value collides with the column's values.

/// The value a sequence gives next: `last` plus `increment` once it was called, `last` itself before;
/// `None` at its end, where the next call fails rather than collides.
pub fn next_value(last: i64, is_called: bool, increment: i64) -> Option<i64> {
    if is_called { last.checked_add(increment) } else { Some(last) }
}

/// The aggregate giving the column's value a sequence must pass: `max`, or `min` for one counting down.
pub fn edge(increment: i64) -> &'static str {
    if increment > 0 { "max" } else { "min" }
}

/// Whether `next` does not pass `edge` ([`edge`] of the column): the insert that takes it collides with a
/// row, now or as the sequence goes on.
pub fn collides(next: i64, increment: i64, edge: i64) -> bool {
    if increment > 0 { next <= edge } else { next >= edge }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_value_collides_until_it_passes_the_column_either_way() {
        assert_eq!((next_value(10, true, 1), next_value(10, false, 1)), (Some(11), Some(10)));
        assert_eq!(next_value(i64::MAX, true, 1), None);
        assert!(collides(11, 1, 11) && !collides(12, 1, 11));
        assert!(collides(-3, -1, -3) && !collides(-4, -1, -3));
        assert_eq!((edge(1), edge(-1)), ("max", "min"));
    }
}
