//! The DAG over models, seeds, snapshots, sources and tests, and node selection on it.
//!
//! Built with petgraph from the dependencies the parse phase captured. A cycle is an error that
//! names every node on the cycle and its file. Selection (selector.rs) evaluates dbt's grammar
//! against this graph.

pub mod selector;

use std::collections::{HashMap, HashSet, VecDeque};

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction;

use crate::diagnostic::{Diagnostic, Location};
use crate::manifest::{Manifest, NodeId};

/// A dependency cycle: the nodes in order, the first repeated at the end.
#[derive(Debug, Clone, thiserror::Error)]
#[error("dependency cycle: {}", .path.iter().map(|n| n.0.as_str()).collect::<Vec<_>>().join(" -> "))]
pub struct CycleError {
    pub path: Vec<NodeId>,
}

impl CycleError {
    pub fn to_diagnostic(&self, manifest: &Manifest) -> Diagnostic {
        let names: Vec<String> = self
            .path
            .iter()
            .map(|id| {
                manifest
                    .get(id)
                    .map(|n| format!("{} ({})", n.name, n.original_file_path.display()))
                    .unwrap_or_else(|| id.0.clone())
            })
            .collect();
        let first = self.path.first().and_then(|id| manifest.get(id));
        let mut diagnostic = Diagnostic::error(format!("dependency cycle: {}", names.join(" -> ")))
            .with_hint("a model cannot depend on itself, directly or through others: remove one of these refs");
        if let Some(node) = first {
            diagnostic = diagnostic.at(Location::file(&node.original_file_path));
        }
        diagnostic
    }
}

/// The DAG: an edge runs from a node to each node that depends on it.
#[derive(Debug)]
pub struct Graph {
    graph: DiGraph<NodeId, ()>,
    index: HashMap<NodeId, NodeIndex>,
}

impl Graph {
    pub fn build(manifest: &Manifest) -> Result<Graph, CycleError> {
        let mut graph = DiGraph::with_capacity(manifest.nodes.len(), manifest.nodes.len() * 2);
        let mut index = HashMap::with_capacity(manifest.nodes.len());
        for id in manifest.nodes.keys() {
            index.insert(id.clone(), graph.add_node(id.clone()));
        }
        for node in manifest.nodes.values() {
            let to = index[&node.unique_id];
            for dep in &node.depends_on {
                if let Some(from) = index.get(dep) {
                    graph.add_edge(*from, to, ());
                }
            }
        }
        let built = Graph { graph, index };
        if let Err(cycle) = petgraph::algo::toposort(&built.graph, None) {
            return Err(CycleError {
                path: built.cycle_through(cycle.node_id()),
            });
        }
        Ok(built)
    }

    /// A cycle through `start`: breadth-first search back to it, then the path.
    fn cycle_through(&self, start: NodeIndex) -> Vec<NodeId> {
        let mut parent: HashMap<NodeIndex, NodeIndex> = HashMap::new();
        let mut queue = VecDeque::from([start]);
        let mut seen = HashSet::from([start]);
        while let Some(current) = queue.pop_front() {
            for next in self.graph.neighbors_directed(current, Direction::Outgoing) {
                if next == start {
                    let mut path = vec![self.graph[start].clone()];
                    let mut walk = current;
                    let mut reversed = Vec::new();
                    while walk != start {
                        reversed.push(self.graph[walk].clone());
                        walk = parent[&walk];
                    }
                    path.extend(reversed.into_iter().rev());
                    path.push(self.graph[start].clone());
                    return path;
                }
                if seen.insert(next) {
                    parent.insert(next, current);
                    queue.push_back(next);
                }
            }
        }
        // A self-loop or a cycle not through `start`: report what we know.
        vec![self.graph[start].clone(), self.graph[start].clone()]
    }

    pub fn contains(&self, id: &NodeId) -> bool {
        self.index.contains_key(id)
    }

    /// Nodes reachable downstream (`Outgoing`) or upstream (`Incoming`) of `id`, up to `depth`
    /// edges away (`None` for all), not including `id` itself.
    pub fn reachable(
        &self,
        id: &NodeId,
        direction: Direction,
        depth: Option<usize>,
    ) -> Vec<NodeId> {
        let Some(&start) = self.index.get(id) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut seen = HashSet::from([start]);
        let mut frontier = vec![start];
        let mut level = 0;
        while !frontier.is_empty() && depth.is_none_or(|d| level < d) {
            let mut next = Vec::new();
            for node in frontier {
                for neighbor in self.graph.neighbors_directed(node, direction) {
                    if seen.insert(neighbor) {
                        out.push(self.graph[neighbor].clone());
                        next.push(neighbor);
                    }
                }
            }
            frontier = next;
            level += 1;
        }
        out
    }

    pub fn descendants(&self, id: &NodeId, depth: Option<usize>) -> Vec<NodeId> {
        self.reachable(id, Direction::Outgoing, depth)
    }

    pub fn ancestors(&self, id: &NodeId, depth: Option<usize>) -> Vec<NodeId> {
        self.reachable(id, Direction::Incoming, depth)
    }

    /// Direct parents.
    pub fn parents(&self, id: &NodeId) -> Vec<NodeId> {
        self.ancestors(id, Some(1))
    }

    /// Every node in dependency order (parents before children), ties broken by id for
    /// stable output.
    pub fn topological_order(&self) -> Vec<NodeId> {
        let mut in_degree: HashMap<NodeIndex, usize> = self
            .graph
            .node_indices()
            .map(|n| {
                (
                    n,
                    self.graph
                        .neighbors_directed(n, Direction::Incoming)
                        .count(),
                )
            })
            .collect();
        let mut ready: std::collections::BTreeMap<NodeId, NodeIndex> = in_degree
            .iter()
            .filter(|(_, d)| **d == 0)
            .map(|(n, _)| (self.graph[*n].clone(), *n))
            .collect();
        let mut order = Vec::with_capacity(self.graph.node_count());
        while let Some((id, node)) = ready.pop_first() {
            order.push(id);
            for child in self.graph.neighbors_directed(node, Direction::Outgoing) {
                if let Some(d) = in_degree.get_mut(&child) {
                    *d -= 1;
                    if *d == 0 {
                        ready.insert(self.graph[child].clone(), child);
                    }
                }
            }
        }
        order
    }
}
