//! The unified diff `pgsafe lint --diff` prints: Myers' shortest edit script over lines, in hunks with
//! three lines of context, as `diff -u` and `git apply` read it. A fix changes a few lines, so the
//! script's cost (lines times changes) stays small.

/// One step of the edit script: a line of both texts, or of only one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Same(usize, usize),
    Delete(usize),
    Insert(usize),
}

const CONTEXT: usize = 3;

/// `--- NAME`, `+++ NAME` and the hunks turning `before` into `after`; empty when they are equal.
pub fn unified(name: &str, before: &str, after: &str) -> String {
    if before == after {
        return String::new();
    }
    let a: Vec<&str> = before.split_inclusive('\n').collect();
    let b: Vec<&str> = after.split_inclusive('\n').collect();
    let ops = script(&a, &b);
    let mut out = format!("--- {name}\n+++ {name}\n");
    let changes: Vec<usize> = (0..ops.len()).filter(|&i| !matches!(ops[i], Op::Same(..))).collect();
    let mut i = 0;
    while i < changes.len() {
        // A hunk: changes whose gaps are at most twice the context, and the context around them.
        let mut j = i;
        while j + 1 < changes.len() && changes[j + 1] - changes[j] <= 2 * CONTEXT + 1 {
            j += 1;
        }
        let from = changes[i].saturating_sub(CONTEXT);
        let to = (changes[j] + CONTEXT + 1).min(ops.len());
        let hunk = &ops[from..to];
        // Where the hunk starts in each text: the lines before it.
        let (mut old_start, mut new_start) = (0, 0);
        for op in &ops[..from] {
            match op {
                Op::Same(..) => {
                    old_start += 1;
                    new_start += 1;
                }
                Op::Delete(_) => old_start += 1,
                Op::Insert(_) => new_start += 1,
            }
        }
        let old_len = hunk.iter().filter(|op| !matches!(op, Op::Insert(_))).count();
        let new_len = hunk.iter().filter(|op| !matches!(op, Op::Delete(_))).count();
        let start = |start: usize, len: usize| if len == 0 { start } else { start + 1 };
        out.push_str(&format!(
            "@@ -{},{old_len} +{},{new_len} @@\n",
            start(old_start, old_len),
            start(new_start, new_len)
        ));
        for op in hunk {
            let (mark, line) = match *op {
                Op::Same(x, _) => (' ', a[x]),
                Op::Delete(x) => ('-', a[x]),
                Op::Insert(y) => ('+', b[y]),
            };
            out.push(mark);
            out.push_str(line);
            if !line.ends_with('\n') {
                out.push_str("\n\\ No newline at end of file\n");
            }
        }
        i = j + 1;
    }
    out
}

/// Myers' shortest edit script from `a` to `b`.
fn script(a: &[&str], b: &[&str]) -> Vec<Op> {
    let (n, m) = (a.len() as isize, b.len() as isize);
    let max = n + m;
    let offset = max as usize;
    let mut v = vec![0isize; 2 * offset + 2];
    let mut trace: Vec<Vec<isize>> = Vec::new();
    let at = |k: isize| (offset as isize + k) as usize;
    'search: for d in 0..=max {
        trace.push(v.clone());
        for k in (-d..=d).step_by(2) {
            let mut x =
                if k == -d || (k != d && v[at(k - 1)] < v[at(k + 1)]) { v[at(k + 1)] } else { v[at(k - 1)] + 1 };
            let mut y = x - k;
            while x < n && y < m && a[x as usize] == b[y as usize] {
                x += 1;
                y += 1;
            }
            v[at(k)] = x;
            if x >= n && y >= m {
                break 'search;
            }
        }
    }
    let (mut x, mut y) = (n, m);
    let mut ops = Vec::new();
    for (d, v) in trace.iter().enumerate().rev() {
        let d = d as isize;
        let k = x - y;
        let prev_k = if k == -d || (k != d && v[at(k - 1)] < v[at(k + 1)]) { k + 1 } else { k - 1 };
        let prev_x = v[at(prev_k)];
        let prev_y = prev_x - prev_k;
        while x > prev_x && y > prev_y {
            ops.push(Op::Same((x - 1) as usize, (y - 1) as usize));
            x -= 1;
            y -= 1;
        }
        if d > 0 {
            if x == prev_x {
                ops.push(Op::Insert((y - 1) as usize));
            } else {
                ops.push(Op::Delete((x - 1) as usize));
            }
        }
        x = prev_x;
        y = prev_y;
    }
    ops.reverse();
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_line_is_one_hunk_with_its_context() {
        let before = "a\nb\nc\nd\ne\nf\ng\nh\n";
        let after = "a\nb\nc\nd\nE\nf\ng\nh\n";
        assert_eq!(
            unified("m.sql", before, after),
            "--- m.sql\n+++ m.sql\n@@ -2,7 +2,7 @@\n b\n c\n d\n-e\n+E\n f\n g\n h\n"
        );
    }

    #[test]
    fn far_apart_changes_are_two_hunks_and_equal_texts_no_diff() {
        let before: String = (1..=20).map(|i| format!("{i}\n")).collect();
        let after = before.replacen("2\n", "two\n", 1).replace("19\n", "");
        let diff = unified("m.sql", &before, &after);
        assert_eq!(diff.matches("@@ -").count(), 2, "{diff}");
        assert!(diff.contains("@@ -1,5 +1,5 @@\n 1\n-2\n+two\n 3\n"), "{diff}");
        assert!(diff.contains("@@ -16,5 +16,4 @@\n 16\n 17\n 18\n-19\n 20\n"), "{diff}");
        assert_eq!(unified("m.sql", &before, &before), "");
    }

    #[test]
    fn an_insertion_at_the_top_and_a_missing_final_newline_are_marked() {
        let diff = unified("m.sql", "x;", "SET a = 1;\nx;");
        assert_eq!(diff, "--- m.sql\n+++ m.sql\n@@ -1,1 +1,2 @@\n+SET a = 1;\n x;\n\\ No newline at end of file\n");
        let diff = unified("m.sql", "", "x;\n");
        assert_eq!(diff, "--- m.sql\n+++ m.sql\n@@ -0,0 +1,1 @@\n+x;\n");
    }
}
