//! Puts objects in an order that creates each after everything it depends on: a topological sort of
//! the dependency graph that, among the objects ready at each step, takes the one pg_dump would take
//! first (its kind's priority, then schema and name). Cycles are broken the way the least harm is done:
//! the waiting object of the latest kind goes first, and the break is reported.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::ObjectKind;

/// pg_dump's order of kinds (`dbObjectTypePriority` in pg_dump_sort.c): lower first when nothing else
/// decides.
pub(crate) fn priority(kind: &ObjectKind) -> u32 {
    use ObjectKind as K;
    match kind {
        K::Schema => 1,
        K::ProceduralLanguage => 2,
        K::Collation => 3,
        K::Transform => 4,
        K::Extension => 5,
        K::ShellType | K::Type | K::Domain => 6,
        K::Cast => 7,
        K::Function | K::Procedure => 8,
        K::Aggregate => 9,
        K::AccessMethod => 10,
        K::Operator => 11,
        K::OperatorFamily | K::OperatorClass => 12,
        K::Conversion => 13,
        K::TextSearchParser => 14,
        K::TextSearchTemplate => 15,
        K::TextSearchDictionary => 16,
        K::TextSearchConfiguration => 17,
        K::ForeignDataWrapper => 18,
        K::Server => 19,
        K::Table | K::Sequence | K::View | K::MaterializedView | K::ForeignTable => 20,
        K::TableAttach => 21,
        K::CheckConstraint => 22,
        K::Default => 23,
        K::SequenceOwnedBy => 24,
        K::UserMapping => 25,
        // Kinds outside this list of pg_dump's: after every pre-data kind of it, before the post-data
        // ones. `Other` only comes from an archive, which is never sorted again, but is placed as the
        // others for a caller that does.
        K::LargeObject | K::Acl | K::ViewDefinition | K::Other(_) => 26,
        K::Constraint => 30,
        K::Index => 31,
        K::IndexAttach => 32,
        K::Statistics => 33,
        K::Rule => 34,
        K::Trigger => 35,
        K::FkConstraint => 36,
        K::RowSecurity | K::Policy => 37,
        K::Publication => 38,
        K::PublicationTable | K::PublicationTablesInSchema => 39,
        K::Subscription => 40,
        K::DefaultAcl => 41,
        K::EventTrigger => 42,
        K::MaterializedViewData => 43,
    }
}

/// What the sort needs to know of each node.
pub(crate) struct Node<'a> {
    pub kind: &'a ObjectKind,
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

    fn node<'a>(kind: &'a ObjectKind, name: &'a str, deps: &'a [usize]) -> Node<'a> {
        Node { kind, schema: Some("s"), name, deps }
    }

    #[test]
    fn dependencies_come_first_then_priority_then_name() {
        let nodes = [
            node(&ObjectKind::Table, "b", &[2]),
            node(&ObjectKind::Table, "a", &[]),
            node(&ObjectKind::Function, "f", &[]),
            node(&ObjectKind::Schema, "s", &[]),
            node(&ObjectKind::Index, "i", &[1]),
        ];
        let (order, broken) = sort(&nodes);
        assert_eq!(order, vec![3, 2, 1, 0, 4]);
        assert!(broken.is_empty());
    }

    #[test]
    fn a_cycle_is_broken_inside_the_cycle() {
        // The function only waits for the cycle between the two views; it must not be taken early.
        let nodes = [
            node(&ObjectKind::Function, "f", &[1]),
            node(&ObjectKind::View, "a", &[2]),
            node(&ObjectKind::View, "b", &[1]),
        ];
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
        let nodes: Vec<Node<'_>> = (0..4000).map(|i| node(&ObjectKind::View, &names[i], &deps[i])).collect();
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
        let nodes = [
            node(&ObjectKind::View, "v", &[1]),
            node(&ObjectKind::Function, "f", &[0]),
            node(&ObjectKind::Schema, "s", &[]),
        ];
        let (order, broken) = sort(&nodes);
        assert_eq!(order.len(), 3);
        assert_eq!(order[0], 2);
        assert_eq!(broken, vec![1]);
        assert_eq!(order[1], 1);
    }
}
