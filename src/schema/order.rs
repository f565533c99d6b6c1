//! Puts objects in an order that creates each after everything it depends on: a topological sort of
//! the dependency graph that, among the objects ready at each step, takes the one pg_dump would take
//! first (its kind's priority, then schema and name). Cycles are broken the way the least harm is done:
//! the waiting object of the latest kind goes first, and the break is reported.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// pg_dump's order of kinds (`dbObjectTypePriority` in pg_dump_sort.c): lower first when nothing else
/// decides.
pub(crate) fn priority(kind: &str) -> u32 {
    match kind {
        "SCHEMA" => 1,
        "PROCEDURAL LANGUAGE" => 2,
        "COLLATION" => 3,
        "TRANSFORM" => 4,
        "EXTENSION" => 5,
        "SHELL TYPE" | "TYPE" | "DOMAIN" => 6,
        "CAST" => 7,
        "FUNCTION" | "PROCEDURE" => 8,
        "AGGREGATE" => 9,
        "ACCESS METHOD" => 10,
        "OPERATOR" => 11,
        "OPERATOR FAMILY" | "OPERATOR CLASS" => 12,
        "CONVERSION" => 13,
        "TEXT SEARCH PARSER" => 14,
        "TEXT SEARCH TEMPLATE" => 15,
        "TEXT SEARCH DICTIONARY" => 16,
        "TEXT SEARCH CONFIGURATION" => 17,
        "FOREIGN DATA WRAPPER" => 18,
        "SERVER" => 19,
        "TABLE" | "SEQUENCE" | "VIEW" | "MATERIALIZED VIEW" | "FOREIGN TABLE" => 20,
        "TABLE ATTACH" => 21,
        "CHECK CONSTRAINT" => 22,
        "DEFAULT" => 23,
        "SEQUENCE OWNED BY" => 24,
        "USER MAPPING" => 25,
        "CONSTRAINT" => 30,
        "INDEX" => 31,
        "INDEX ATTACH" => 32,
        "STATISTICS" => 33,
        "RULE" => 34,
        "TRIGGER" => 35,
        "FK CONSTRAINT" => 36,
        "ROW SECURITY" | "POLICY" => 37,
        "PUBLICATION" => 38,
        "PUBLICATION TABLE" | "PUBLICATION TABLES IN SCHEMA" => 39,
        "SUBSCRIPTION" => 40,
        "DEFAULT ACL" => 41,
        "EVENT TRIGGER" => 42,
        "MATERIALIZED VIEW DATA" => 43,
        _ => 26,
    }
}

/// What the sort needs to know of each node.
pub(crate) struct Node<'a> {
    pub kind: &'a str,
    pub schema: Option<&'a str>,
    pub name: &'a str,
    /// Indexes of the nodes this one must follow.
    pub deps: &'a [usize],
}

/// The order, as indexes into `nodes`, and the cycles broken on the way (each as the node that was
/// taken before its dependencies were all done).
pub(crate) fn sort(nodes: &[Node<'_>]) -> (Vec<usize>, Vec<usize>) {
    let n = nodes.len();
    let mut waiting_on = vec![0usize; n];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, node) in nodes.iter().enumerate() {
        let mut deps: Vec<usize> = node.deps.iter().copied().filter(|&d| d != i && d < n).collect();
        deps.sort_unstable();
        deps.dedup();
        waiting_on[i] = deps.len();
        for d in deps {
            dependents[d].push(i);
        }
    }
    let key = |i: usize| (priority(nodes[i].kind), nodes[i].schema.unwrap_or(""), nodes[i].name, i);
    let mut ready: BinaryHeap<Reverse<(u32, &str, &str, usize)>> =
        (0..n).filter(|&i| waiting_on[i] == 0).map(|i| Reverse(key(i))).collect();
    let mut done = vec![false; n];
    let mut order = Vec::with_capacity(n);
    let mut broken = Vec::new();
    // Where to look for the next unfinished node when a cycle must be broken: nodes before it are all done
    // (done only ever turns true), so breaking many cycles stays linear.
    let mut unfinished = 0;
    let mut on_path = vec![usize::MAX; n];
    while order.len() < n {
        let next = match ready.pop() {
            Some(Reverse((.., i))) => i,
            None => {
                // Every waiting node is on a cycle or waits for one: walk unfinished dependencies
                // until a node repeats, and take the node of that cycle pg_dump would take first.
                while unfinished < n && done[unfinished] {
                    unfinished += 1;
                }
                if unfinished == n {
                    break;
                }
                let cycle = find_cycle(unfinished, nodes, &done, &mut on_path);
                let Some(&i) = cycle.iter().min_by_key(|&&i| key(i)) else { break };
                broken.push(i);
                i
            }
        };
        if done[next] {
            continue;
        }
        done[next] = true;
        order.push(next);
        for &d in &dependents[next] {
            waiting_on[d] = waiting_on[d].saturating_sub(1);
            if waiting_on[d] == 0 && !done[d] {
                ready.push(Reverse(key(d)));
            }
        }
    }
    (order, broken)
}

/// Follows unfinished dependencies from `start` until a node repeats, and returns that cycle. `on_path`
/// (one entry per node, all `usize::MAX`) marks the walk's nodes and is left as it was found, so that it
/// is allocated once for all the cycles a sort breaks.
fn find_cycle(start: usize, nodes: &[Node<'_>], done: &[bool], on_path: &mut [usize]) -> Vec<usize> {
    let mut path = vec![start];
    on_path[start] = 0;
    let mut at = start;
    let cycle = loop {
        let Some(&next) = nodes[at].deps.iter().find(|&&d| d < nodes.len() && d != at && !done[d]) else {
            // Cannot happen while `at` waits; fall back to the node itself.
            break vec![at];
        };
        if on_path[next] != usize::MAX {
            break path[on_path[next]..].to_vec();
        }
        on_path[next] = path.len();
        path.push(next);
        at = next;
    };
    for &i in &path {
        on_path[i] = usize::MAX;
    }
    cycle
}

/// The nodes that lie on a cycle of the directed graph `edges` (in a strongly connected component of
/// more than one node).
pub(crate) fn in_cycles<K: Copy + Eq + std::hash::Hash>(edges: &[(K, K)]) -> std::collections::HashSet<K> {
    crate::graph::cycles(edges).into_iter().filter(|c| c.len() > 1).flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node<'a>(kind: &'a str, name: &'a str, deps: &'a [usize]) -> Node<'a> {
        Node { kind, schema: Some("s"), name, deps }
    }

    #[test]
    fn dependencies_come_first_then_priority_then_name() {
        let nodes = [
            node("TABLE", "b", &[2]),
            node("TABLE", "a", &[]),
            node("FUNCTION", "f", &[]),
            node("SCHEMA", "s", &[]),
            node("INDEX", "i", &[1]),
        ];
        let (order, broken) = sort(&nodes);
        assert_eq!(order, vec![3, 2, 1, 0, 4]);
        assert!(broken.is_empty());
    }

    #[test]
    fn a_cycle_is_broken_inside_the_cycle() {
        // The function only waits for the cycle between the two views; it must not be taken early.
        let nodes = [node("FUNCTION", "f", &[1]), node("VIEW", "a", &[2]), node("VIEW", "b", &[1])];
        let (order, broken) = sort(&nodes);
        assert_eq!(broken, vec![1]);
        assert_eq!(order, vec![1, 0, 2]);
    }

    #[test]
    fn many_cycles_are_each_broken_once() {
        // 2,000 two-node cycles behind one another: each view waits for the pair before it.
        let deps: Vec<Vec<usize>> = (0..4000)
            .map(|i| {
                let partner = i ^ 1;
                if i >= 2 { vec![partner, i - 2] } else { vec![partner] }
            })
            .collect();
        let names: Vec<String> = (0..4000).map(|i| format!("v{i:04}")).collect();
        let nodes: Vec<Node<'_>> = (0..4000).map(|i| node("VIEW", &names[i], &deps[i])).collect();
        let (order, broken) = sort(&nodes);
        assert_eq!(broken.len(), 2000);
        assert_eq!(order.len(), 4000);
        let mut seen = order.clone();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 4000, "each node once");
    }

    #[test]
    fn cycles_are_broken_and_reported() {
        let nodes = [node("VIEW", "v", &[1]), node("FUNCTION", "f", &[0]), node("SCHEMA", "s", &[])];
        let (order, broken) = sort(&nodes);
        assert_eq!(order.len(), 3);
        assert_eq!(order[0], 2);
        assert_eq!(broken, vec![1]);
        assert_eq!(order[1], 1);
    }
}
