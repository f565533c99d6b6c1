//! Dependency graphs: an order in which everything comes after what it waits for (Kahn), and the cycles
//! that make such an order impossible (Tarjan). The schema's order, the worker pool and the data-only
//! restore's load order stand on them.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::Hash;

/// Who waits for whom among positions `0..n`: each position waits for the ones `deps` names for it (a
/// missing or empty list: none; out-of-range and self references are ignored).
pub(crate) struct Waits {
    waiting: Vec<usize>,
    dependents: Vec<Vec<usize>>,
}

impl Waits {
    pub fn new(n: usize, deps: impl Fn(usize) -> Vec<usize>) -> Waits {
        let mut waiting = vec![0usize; n];
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, count) in waiting.iter_mut().enumerate() {
            for d in deps(i).into_iter().filter(|&d| d < n && d != i) {
                *count += 1;
                dependents[d].push(i);
            }
        }
        Waits { waiting, dependents }
    }

    /// The positions that wait for nothing.
    pub fn ready(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.waiting.len()).filter(|&i| self.waiting[i] == 0)
    }

    /// Marks `i` done and returns the positions that no longer wait for anything.
    pub fn done(&mut self, i: usize) -> Vec<usize> {
        let mut now = Vec::new();
        for &d in &self.dependents[i] {
            self.waiting[d] -= 1;
            if self.waiting[d] == 0 {
                now.push(d);
            }
        }
        now
    }
}

/// Positions `0..n` in an order where each comes after those `deps` names for it (`deps` may be shorter
/// than `n`: the rest wait for nothing), otherwise in their own order; `None` when some wait on each
/// other in a loop.
pub(crate) fn order(n: usize, deps: &[Vec<usize>]) -> Option<Vec<usize>> {
    let mut waits = Waits::new(n, |i| deps.get(i).cloned().unwrap_or_default());
    let mut ready: BinaryHeap<Reverse<usize>> = waits.ready().map(Reverse).collect();
    let mut out = Vec::with_capacity(n);
    while let Some(Reverse(i)) = ready.pop() {
        out.push(i);
        ready.extend(waits.done(i).into_iter().map(Reverse));
    }
    (out.len() == n).then_some(out)
}

/// The cycles of the directed graph `edges`: its strongly connected components that hold a cycle (more than
/// one node, or one node with an edge to itself), by Tarjan's algorithm without recursion, so that long
/// chains cannot overflow the stack.
pub(crate) fn cycles<K: Copy + Eq + Hash>(edges: &[(K, K)]) -> Vec<Vec<K>> {
    let mut ids: HashMap<K, usize> = HashMap::new();
    let mut nodes: Vec<K> = Vec::new();
    let mut id = |k: K, nodes: &mut Vec<K>| {
        *ids.entry(k).or_insert_with(|| {
            nodes.push(k);
            nodes.len() - 1
        })
    };
    let mut out_edges: Vec<Vec<usize>> = Vec::new();
    for &(a, b) in edges {
        let (a, b) = (id(a, &mut nodes), id(b, &mut nodes));
        out_edges.resize(nodes.len(), Vec::new());
        out_edges[a].push(b);
    }
    out_edges.resize(nodes.len(), Vec::new());
    let n = nodes.len();
    let (mut index, mut low, mut on_stack) = (vec![usize::MAX; n], vec![0; n], vec![false; n]);
    let (mut stack, mut next, mut found) = (Vec::new(), 0, Vec::new());
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        // (node, position in its edge list)
        let mut work = vec![(root, 0usize)];
        while let Some(&mut (v, ref mut pos)) = work.last_mut() {
            if *pos == 0 && index[v] == usize::MAX {
                index[v] = next;
                low[v] = next;
                next += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            if let Some(&w) = out_edges[v].get(*pos) {
                *pos += 1;
                if index[w] == usize::MAX {
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut component = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 || out_edges[v].contains(&v) {
                    found.push(component.into_iter().map(|w| nodes[w]).collect());
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_puts_what_is_needed_first_and_finds_loops() {
        assert_eq!(order(4, &[vec![3], vec![], vec![0]]), Some(vec![1, 3, 0, 2]));
        assert_eq!(order(3, &[]), Some(vec![0, 1, 2]));
        assert_eq!(order(3, &[vec![2], vec![], vec![0]]), None);
        assert_eq!(order(2, &[vec![0, 5]]), Some(vec![0, 1]), "self and out-of-range references are ignored");
    }

    #[test]
    fn finds_the_cycles_and_nothing_else() {
        // 1 -> 2 -> 3 -> 1 is a cycle; 3 -> 4 -> 5 is not; 6 <-> 7 is; 8 -> 8 is.
        let edges = [(1, 2), (2, 3), (3, 1), (3, 4), (4, 5), (6, 7), (7, 6), (8, 8)];
        let mut found: Vec<Vec<i32>> = cycles(&edges)
            .into_iter()
            .map(|mut c| {
                c.sort();
                c
            })
            .collect();
        found.sort();
        assert_eq!(found, vec![vec![1, 2, 3], vec![6, 7], vec![8]]);
        assert!(cycles(&[(1, 2), (2, 3)]).is_empty());
    }
}
