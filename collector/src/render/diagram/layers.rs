//! Which column each hop goes in. Traffic both ways and stray packets (an IPv6 multicast seen
//! on a few links in any order) make the hop graph far from a chain, so columns follow its
//! backbone: the maximum spanning tree by packets (both directions summed; ties by node
//! order), and per connected part the distance in that tree from one end of its longest path.
//! Of the two ends, a hop inside a namespace (a container's eth0) comes first, then the one
//! more journeys start at, then the earlier. So the Pi + Docker bed reads container eth0,
//! veth, docker0, wlan0 from left to right whatever else it carried.

use crate::render::graph::Graph;
use std::cmp::Reverse;
use std::collections::{BTreeMap, VecDeque};

/// Column per node, in the graph's node order.
pub fn layers(g: &Graph) -> Vec<usize> {
    let n = g.nodes.len();
    let tree = spanning_tree(g);
    let mut layer = vec![usize::MAX; n];
    let mut seen = vec![false; n];
    for start in 0..n {
        if seen[start] {
            continue;
        }
        let (u, part) = farthest(&tree, start);
        for &i in &part {
            seen[i] = true;
        }
        let (v, _) = farthest(&tree, u);
        let key = |i: usize| {
            let node = &g.nodes[i];
            (
                node.netns.is_empty(),
                Reverse(node.starts),
                node.first_start.unwrap_or(usize::MAX),
                i,
            )
        };
        let root = if key(v) < key(u) { v } else { u };
        for (i, d) in distances(&tree, root) {
            layer[i] = d;
        }
    }
    layer
}

/// Adjacency lists of the maximum spanning tree (forest) by packets (Kruskal).
fn spanning_tree(g: &Graph) -> Vec<Vec<usize>> {
    let n = g.nodes.len();
    let mut weight: BTreeMap<(usize, usize), usize> = BTreeMap::new();
    for e in g
        .edges
        .iter()
        .filter(|e| e.from != e.to && e.from < n && e.to < n)
    {
        *weight
            .entry((e.from.min(e.to), e.from.max(e.to)))
            .or_insert(0) += e.packets;
    }
    let mut pairs: Vec<((usize, usize), usize)> = weight.into_iter().collect();
    pairs.sort_by_key(|&(pair, w)| (Reverse(w), pair));
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut adj = vec![Vec::new(); n];
    for ((a, b), _) in pairs {
        let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
        if ra != rb {
            parent[ra] = rb;
            adj[a].push(b);
            adj[b].push(a);
        }
    }
    for a in &mut adj {
        a.sort_unstable();
    }
    adj
}

/// Breadth-first distances from `from` over the tree, in visiting order.
fn distances(tree: &[Vec<usize>], from: usize) -> Vec<(usize, usize)> {
    let mut dist = vec![usize::MAX; tree.len()];
    let mut out = Vec::new();
    let mut queue = VecDeque::from([from]);
    dist[from] = 0;
    while let Some(i) = queue.pop_front() {
        out.push((i, dist[i]));
        for &j in &tree[i] {
            if dist[j] == usize::MAX {
                dist[j] = dist[i] + 1;
                queue.push_back(j);
            }
        }
    }
    out
}

/// The node farthest from `from` (the lowest numbered of those as far), and every node of
/// its part.
fn farthest(tree: &[Vec<usize>], from: usize) -> (usize, Vec<usize>) {
    let all = distances(tree, from);
    let far = all
        .iter()
        .max_by_key(|&&(i, d)| (d, Reverse(i)))
        .map_or(from, |&(i, _)| i);
    (far, all.into_iter().map(|(i, _)| i).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::diagram::fixture;
    use crate::render::graph::Edge;

    #[test]
    fn the_fixture_reads_left_to_right_from_the_container() {
        assert_eq!(layers(&fixture::graph()), [0, 1, 2, 3, 0]);
    }

    #[test]
    fn stray_packets_do_not_bend_the_backbone() {
        // The fixture, with a stray packet straight from pi2:wlan0 to the container and
        // the container's journeys counted as starting at wlan0: the column order stays.
        let mut g = fixture::graph();
        let stray = Edge {
            from: 3,
            to: 0,
            packets: 1,
            ..g.edges[0].clone()
        };
        g.edges.push(stray);
        g.nodes[0].starts = 0;
        g.nodes[3].starts = 50;
        assert_eq!(layers(&g), [0, 1, 2, 3, 0]);
    }
}
