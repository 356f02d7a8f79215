//! A deterministic layered layout for the SVG diagram, in whole pixels.
//!
//! - Layers (columns): see `layers.rs`; a container's eth0 is column 0, its veth 1, the
//!   bridge 2, the uplink 3.
//! - Rows: nodes of one board and namespace stack in their column (by name). Namespaces of a
//!   board share a band where their columns do not overlap (first fit), else stack; boards do
//!   the same on the canvas. So boxes never overlap, and a board's box holds its namespaces'.
//! - Edge labels sit in the gap after the left column of the edge (a gap is as wide as the
//!   widest label), above a rightward edge and below a leftward one, and are pushed down
//!   until no two in one gap overlap.
//!
//! Text widths assume a 12 px monospace font ([`CHAR_W`] per character, a little more than
//! DejaVu Sans Mono's 7.2 px, for `µ`, `→`, `±` from fallback fonts).

use super::layers::layers;
use super::{edge_lines, node_lines, shown};
use crate::render::graph::Graph;
use std::collections::{BTreeMap, HashSet};

pub const CHAR_W: i64 = 8;
pub const LINE_H: i64 = 14;
const NODE_PAD: i64 = 8;
pub const NODE_H: i64 = 2 * LINE_H + 2 * NODE_PAD;
const ROW_GAP: i64 = 18;
pub const TITLE_H: i64 = 22;
pub const NS_TITLE_H: i64 = 18;
pub const BOX_PAD: i64 = 10;
const NS_PAD: i64 = 5;
const LANE_GAP: i64 = 28;
pub const MARGIN: i64 = 16;
const LABEL_PAD: i64 = 4;
/// The smallest gap between columns: room for the boxes' padding and an arrow.
const MIN_GAP: i64 = 70;
/// Room left and right of a label in its gap (for the arrow heads and the boxes' padding).
const LABEL_ROOM: i64 = 48;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rect {
    pub x: i64,
    pub y: i64,
    pub w: i64,
    pub h: i64,
}

impl Rect {
    pub fn right(&self) -> i64 {
        self.x + self.w
    }
    pub fn bottom(&self) -> i64 {
        self.y + self.h
    }
    pub fn cy(&self) -> i64 {
        self.y + self.h / 2
    }
    pub fn overlaps(&self, o: &Rect) -> bool {
        self.x < o.right() && o.x < self.right() && self.y < o.bottom() && o.y < self.bottom()
    }
}

/// A board or namespace box and its title (as shown).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Boxed {
    pub title: String,
    pub rect: Rect,
}

/// A cubic curve from `start` to `end`, and where its label goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EdgeGeom {
    pub start: (i64, i64),
    pub c1: (i64, i64),
    pub c2: (i64, i64),
    pub end: (i64, i64),
    pub label: Rect,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    pub width: i64,
    pub height: i64,
    /// Per node of the graph, in its order.
    pub layer: Vec<usize>,
    pub nodes: Vec<Rect>,
    pub boards: Vec<Boxed>,
    pub namespaces: Vec<Boxed>,
    /// Per edge of the graph, in its order.
    pub edges: Vec<EdgeGeom>,
}

/// Characters → pixels for one label block.
fn text_w(lines: &[String]) -> i64 {
    lines
        .iter()
        .map(|l| l.chars().count() as i64)
        .max()
        .unwrap_or(0)
        * CHAR_W
}

pub fn layout(g: &Graph) -> Layout {
    let layer = layers(g);
    let cols = layer.iter().max().map_or(1, |m| m + 1);
    // Each column as wide as its widest node (or the board or namespace title over it), each
    // gap as wide as its widest label.
    let mut col_w = vec![104 + 2 * NODE_PAD; cols];
    for (i, n) in g.nodes.iter().enumerate() {
        let titles = [shown(&n.board), format!("netns {}", shown(&n.netns))];
        let w = text_w(&node_lines(n)).max(text_w(&titles) - 2 * NODE_PAD) + 2 * NODE_PAD;
        col_w[layer[i]] = col_w[layer[i]].max(w);
    }
    let mut gap_w = vec![MIN_GAP; cols];
    for e in &g.edges {
        let (Some(&a), Some(&b)) = (layer.get(e.from), layer.get(e.to)) else {
            continue;
        };
        let w = text_w(&edge_lines(e)) + 2 * LABEL_PAD + LABEL_ROOM;
        gap_w[a.min(b)] = gap_w[a.min(b)].max(w);
    }
    let col_x = |c: usize| {
        MARGIN + BOX_PAD + col_w[..c].iter().sum::<i64>() + gap_w[..c].iter().sum::<i64>()
    };

    // Groups: (board, netns) → column → nodes (the graph's nodes are sorted by name).
    let mut groups: BTreeMap<(&str, &str), BTreeMap<usize, Vec<usize>>> = BTreeMap::new();
    for (i, n) in g.nodes.iter().enumerate() {
        groups
            .entry((n.board.as_str(), n.netns.as_str()))
            .or_default()
            .entry(layer[i])
            .or_default()
            .push(i);
    }
    let group_h = |netns: &str, rows: i64| {
        let titled = if netns.is_empty() {
            0
        } else {
            NS_TITLE_H + NS_PAD
        };
        titled + rows * NODE_H + (rows - 1) * ROW_GAP
    };
    // Per board: its groups packed into bands.
    struct BoardPlan<'g> {
        name: &'g str,
        range: (usize, usize),
        groups: Vec<((&'g str, &'g str), usize)>,
        band_h: Vec<i64>,
        height: i64,
    }
    let mut plans: Vec<BoardPlan> = Vec::new();
    for (&(board, netns), cols_of) in &groups {
        let range = span(cols_of);
        let rows = cols_of.values().map(Vec::len).max().unwrap_or(1) as i64;
        let h = group_h(netns, rows);
        if plans.last().is_none_or(|p| p.name != board) {
            plans.push(BoardPlan {
                name: board,
                range,
                groups: Vec::new(),
                band_h: Vec::new(),
                height: 0,
            });
        }
        let Some(p) = plans.last_mut() else { continue };
        p.range = (p.range.0.min(range.0), p.range.1.max(range.1));
        let ranges: Vec<(usize, usize)> = p
            .groups
            .iter()
            .map(|(k, _)| groups.get(k).map_or((0, 0), span))
            .collect();
        let band = first_fit(&ranges, &p.groups, range);
        p.groups.push(((board, netns), band));
        if p.band_h.len() <= band {
            p.band_h.resize(band + 1, 0);
        }
        p.band_h[band] = p.band_h[band].max(h);
    }
    for p in &mut plans {
        let bands = p.band_h.len() as i64;
        p.height = TITLE_H + p.band_h.iter().sum::<i64>() + (bands - 1) * ROW_GAP + BOX_PAD;
    }
    // Boards packed into canvas bands.
    let board_ranges: Vec<(usize, usize)> = plans.iter().map(|p| p.range).collect();
    let mut lane_of: Vec<((&str, &str), usize)> = Vec::new();
    let mut lane_h: Vec<i64> = Vec::new();
    for (i, p) in plans.iter().enumerate() {
        let lane = first_fit(&board_ranges[..i], &lane_of, p.range);
        lane_of.push(((p.name, ""), lane));
        if lane_h.len() <= lane {
            lane_h.resize(lane + 1, 0);
        }
        lane_h[lane] = lane_h[lane].max(p.height);
    }
    let lane_y = |lane: usize| MARGIN + lane_h[..lane].iter().sum::<i64>() + lane as i64 * LANE_GAP;

    let mut out = Layout {
        layer: layer.clone(),
        nodes: vec![Rect::default(); g.nodes.len()],
        ..Layout::default()
    };
    for (p, &(_, lane)) in plans.iter().zip(&lane_of) {
        let y0 = lane_y(lane);
        let x0 = col_x(p.range.0) - BOX_PAD;
        out.boards.push(Boxed {
            title: shown(p.name),
            rect: Rect {
                x: x0,
                y: y0,
                w: col_x(p.range.1) + col_w[p.range.1] + BOX_PAD - x0,
                h: p.height,
            },
        });
        for &(key, band) in &p.groups {
            let Some(cols_of) = groups.get(&key) else {
                continue;
            };
            let gy = y0 + TITLE_H + p.band_h[..band].iter().sum::<i64>() + band as i64 * ROW_GAP;
            let netns = key.1;
            let top = if netns.is_empty() {
                gy
            } else {
                gy + NS_TITLE_H
            };
            for (&c, members) in cols_of {
                for (row, &n) in members.iter().enumerate() {
                    out.nodes[n] = Rect {
                        x: col_x(c),
                        y: top + row as i64 * (NODE_H + ROW_GAP),
                        w: col_w[c],
                        h: NODE_H,
                    };
                }
            }
            if !netns.is_empty() {
                let (lo, hi) = span(cols_of);
                let rows = cols_of.values().map(Vec::len).max().unwrap_or(1) as i64;
                let x = col_x(lo) - NS_PAD;
                out.namespaces.push(Boxed {
                    title: format!("netns {}", shown(netns)),
                    rect: Rect {
                        x,
                        y: gy,
                        w: col_x(hi) + col_w[hi] + NS_PAD - x,
                        h: group_h(netns, rows),
                    },
                });
            }
        }
    }
    out.edges = edges(g, &out, |c| (col_x(c) + col_w[c], gap_w[c]));
    let rects = out
        .nodes
        .iter()
        .chain(out.boards.iter().map(|b| &b.rect))
        .chain(out.edges.iter().map(|e| &e.label));
    let (w, h) = rects.fold((0, 0), |(w, h), r| (w.max(r.right()), h.max(r.bottom())));
    let loops = out.edges.iter().map(|e| e.c1.0.max(e.c2.0));
    out.width = w.max(loops.max().unwrap_or(0)).max(320) + MARGIN;
    out.height = h.max(40) + MARGIN;
    out
}

/// Lowest and highest column of a group.
fn span(cols: &BTreeMap<usize, Vec<usize>>) -> (usize, usize) {
    let lo = cols.keys().next().copied().unwrap_or(0);
    let hi = cols.keys().next_back().copied().unwrap_or(0);
    (lo, hi)
}

/// The first band whose members' column ranges (`ranges[i]` is in band `placed[i].1`) all
/// miss `range`.
fn first_fit<K>(ranges: &[(usize, usize)], placed: &[(K, usize)], range: (usize, usize)) -> usize {
    let bands = placed.iter().map(|p| p.1 + 1).max().unwrap_or(0);
    (0..bands)
        .find(|&b| {
            ranges
                .iter()
                .zip(placed)
                .filter(|(_, p)| p.1 == b)
                .all(|(&(lo, hi), _)| range.1 < lo || hi < range.0)
        })
        .unwrap_or(bands)
}

/// Curves and label places; `gap(c)` is where the gap after column `c` starts, and its width.
fn edges(g: &Graph, l: &Layout, gap: impl Fn(usize) -> (i64, i64)) -> Vec<EdgeGeom> {
    let pairs: HashSet<(usize, usize)> = g.edges.iter().map(|e| (e.from, e.to)).collect();
    let mut out = Vec::with_capacity(g.edges.len());
    // Per gap: (preferred top, edge position) of its labels.
    let mut by_gap: BTreeMap<usize, Vec<(i64, usize)>> = BTreeMap::new();
    for (k, e) in g.edges.iter().enumerate() {
        let (Some(a), Some(b)) = (l.nodes.get(e.from), l.nodes.get(e.to)) else {
            out.push(EdgeGeom {
                start: (0, 0),
                c1: (0, 0),
                c2: (0, 0),
                end: (0, 0),
                label: Rect::default(),
            });
            continue;
        };
        let (la, lb) = (l.layer[e.from], l.layer[e.to]);
        let both_ways = e.from != e.to && pairs.contains(&(e.to, e.from));
        // Rightward (or the first of a same-column pair) above, the other way below.
        let upper = la < lb || (la == lb && e.from < e.to);
        let off = match (both_ways, upper) {
            (false, _) => 0,
            (true, true) => -5,
            (true, false) => 5,
        };
        let lines = edge_lines(e);
        let (w, h) = (
            text_w(&lines) + 2 * LABEL_PAD,
            lines.len() as i64 * LINE_H + 2 * LABEL_PAD,
        );
        let (start, end, c1, c2) = if la == lb {
            // Same column (or a loop): out of the right side and back in, bulging right.
            let s = (a.right(), a.cy() + off - if e.from == e.to { 8 } else { 0 });
            let t = (b.right(), b.cy() + off + if e.from == e.to { 8 } else { 0 });
            let bulge = 36 + (s.1 - t.1).abs() / 4;
            (s, t, (s.0 + bulge, s.1 - 4), (t.0 + bulge, t.1 + 4))
        } else {
            let (s, t) = if la < lb {
                ((a.right(), a.cy() + off), (b.x, b.cy() + off))
            } else {
                ((a.x, a.cy() + off), (b.right(), b.cy() + off))
            };
            let dx = (t.0 - s.0) / 2;
            (s, t, (s.0 + dx, s.1), (t.0 - dx, t.1))
        };
        // Anchor: the curve's middle when it spans one gap, else where it crosses the gap
        // next to its left end. A lone edge's label sits on it; of an edge both ways, the
        // upper one's above both curves, the lower one's below.
        let anchor = if la.abs_diff(lb) <= 1 {
            (start.1 + end.1) / 2
        } else if la < lb {
            start.1
        } else {
            end.1
        };
        let top = match (both_ways, upper) {
            (false, _) => anchor - h / 2,
            (true, true) => start.1.min(end.1) - 3 - h,
            (true, false) => start.1.max(end.1) + 3,
        };
        let col = la.min(lb);
        let (gap_x, gap_w) = gap(col);
        // Beside a same-column curve; else in the middle of the gap.
        let x = if la == lb {
            gap_x + 44
        } else {
            gap_x + (gap_w - w) / 2
        };
        by_gap
            .entry(col)
            .or_default()
            .push((top.max(MARGIN / 2), k));
        out.push(EdgeGeom {
            start,
            c1,
            c2,
            end,
            label: Rect { x, y: 0, w, h },
        });
    }
    // Push labels down until none in a gap overlap (a gap's labels share its x range).
    for labels in by_gap.values_mut() {
        labels.sort_unstable();
        let mut bottom = i64::MIN;
        for &(top, k) in labels.iter() {
            let y = top.max(bottom.saturating_add(4));
            out[k].label.y = y;
            bottom = y + out[k].label.h;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::diagram::fixture;

    #[test]
    fn columns_follow_the_traffic_and_nothing_overlaps() {
        let g = fixture::graph();
        let l = layout(&g);
        // ctr:eth0 → docker0 → wlan0 → pi2:wlan0; the hostile node alone in its own part.
        assert_eq!(l.layer, [0, 1, 2, 3, 0]);
        assert_eq!(l.boards.len(), 3);
        assert_eq!(l.namespaces.len(), 1);
        for (i, a) in l.nodes.iter().enumerate() {
            for b in &l.nodes[i + 1..] {
                assert!(!a.overlaps(b), "{a:?} {b:?}");
            }
            for e in &l.edges {
                assert!(!a.overlaps(&e.label), "node {a:?} label {:?}", e.label);
            }
        }
        for (i, a) in l.edges.iter().enumerate() {
            for b in &l.edges[i + 1..] {
                assert!(!a.label.overlaps(&b.label), "{a:?} {b:?}");
            }
        }
        for (i, a) in l.boards.iter().enumerate() {
            for b in &l.boards[i + 1..] {
                assert!(!a.rect.overlaps(&b.rect), "{a:?} {b:?}");
            }
        }
        // pi1's box holds its nodes and the namespace box.
        let pi1 = l.boards[0].rect;
        let inside = |r: &Rect| {
            r.x >= pi1.x && r.right() <= pi1.right() && r.y >= pi1.y && r.bottom() <= pi1.bottom()
        };
        assert!(l.nodes[..3].iter().all(inside));
        assert!(inside(&l.namespaces[0].rect));
        assert!(l.width >= l.nodes.iter().map(Rect::right).max().unwrap());
    }

    #[test]
    fn an_empty_graph_has_a_small_canvas() {
        let l = layout(&Graph::default());
        assert!(l.nodes.is_empty() && l.edges.is_empty());
        assert!(l.width > 0 && l.height > 0);
    }
}
