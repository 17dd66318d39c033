//! `modelspec lineage ID`: the graph from a model version to its datasets and parents (up), or
//! from a dataset or model to everything built on it (down), as a tree or as JSON.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;

use clap::{Args as ClapArgs, ValueEnum};
use ms_registry::entity::{Direction, LineageGraph};

use super::connect::{self, RegistryArgs, emit};

#[derive(Clone, Copy, ValueEnum)]
pub enum Way {
    /// To what it was built from.
    Up,
    /// To what was built on it.
    Down,
}

#[derive(ClapArgs)]
pub struct Args {
    /// NAME@VERSION (or NAME: its latest version) for a model, sha256:… for a dataset.
    pub id: String,
    #[arg(long, value_enum, default_value = "up")]
    pub direction: Way,
    /// Hops to follow (at most 32).
    #[arg(long, default_value_t = 5)]
    pub depth: u32,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let json = a.registry.json;
    let direction = match a.direction {
        Way::Up => Direction::Up,
        Way::Down => Direction::Down,
    };
    connect::run(&a.registry, |registry, _| async move {
        let graph = registry.lineage(&a.id, direction, a.depth).await?;
        emit(json, &graph, || tree(&graph));
        Ok(ExitCode::SUCCESS)
    })
}

/// The graph as an indented tree from its root; a node reached twice is printed once, then
/// referred to.
pub fn tree(g: &LineageGraph) -> String {
    let labels: BTreeMap<&str, (&str, &str)> = g
        .nodes
        .iter()
        .map(|n| (n.id.as_str(), (n.kind.as_str(), n.label.as_str())))
        .collect();
    // Edges are child -> parent; walking up follows them, walking down reverses them.
    let mut next: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
    for e in &g.edges {
        let (a, b) = match g.direction {
            Direction::Up => (e.from.as_str(), e.to.as_str()),
            Direction::Down => (e.to.as_str(), e.from.as_str()),
        };
        next.entry(a).or_default().push((b, e.relation.as_str()));
    }
    let mut out = format!("{}\n", g.root);
    if g.edges.is_empty() {
        out.push_str(match g.direction {
            Direction::Up => {
                "(nothing recorded: register with --dataset ID or --parent NAME@VERSION)\n"
            }
            Direction::Down => "(nothing registered is built on it)\n",
        });
        return out;
    }
    let mut seen = BTreeSet::from([g.root.as_str()]);
    walk(&g.root, "", &next, &labels, &mut seen, &mut out);
    if g.truncated {
        out.push_str(&format!("(more beyond depth {}: --depth N)\n", g.depth));
    }
    out
}

fn walk<'a>(
    node: &str,
    indent: &str,
    next: &BTreeMap<&'a str, Vec<(&'a str, &'a str)>>,
    labels: &BTreeMap<&str, (&str, &str)>,
    seen: &mut BTreeSet<&'a str>,
    out: &mut String,
) {
    let Some(children) = next.get(node) else {
        return;
    };
    for (i, (child, relation)) in children.iter().enumerate() {
        let last = i + 1 == children.len();
        let (branch, more) = if last {
            ("└── ", "    ")
        } else {
            ("├── ", "│   ")
        };
        let label = match labels.get(child) {
            Some((kind, label)) if !child.contains(label) => format!(" ({kind} {label})"),
            _ => String::new(),
        };
        let again = !seen.insert(child);
        out.push_str(&format!(
            "{indent}{branch}{relation}: {child}{label}{}\n",
            if again { " (above)" } else { "" }
        ));
        if !again {
            walk(child, &format!("{indent}{more}"), next, labels, seen, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ms_registry::entity::{LineageEdge, LineageNode};

    fn node(id: &str, kind: &str, label: &str, depth: u32) -> LineageNode {
        LineageNode {
            id: id.into(),
            kind: kind.into(),
            label: label.into(),
            depth,
        }
    }

    fn edge(from: &str, to: &str, relation: &str) -> LineageEdge {
        LineageEdge {
            from: from.into(),
            to: to.into(),
            relation: relation.into(),
        }
    }

    #[test]
    fn a_diamond_prints_the_shared_node_once() {
        let g = LineageGraph {
            root: "model:m@2".into(),
            direction: Direction::Up,
            depth: 5,
            nodes: vec![
                node("model:m@2", "model", "m", 0),
                node("model:m@1", "model", "m", 1),
                node("dataset:sha256:aa", "dataset", "corpus", 1),
            ],
            edges: vec![
                edge("model:m@2", "model:m@1", "derivedFrom"),
                edge("model:m@2", "dataset:sha256:aa", "trainedOn"),
                edge("model:m@1", "dataset:sha256:aa", "trainedOn"),
            ],
            truncated: false,
        };
        let t = tree(&g);
        assert_eq!(
            t,
            "model:m@2\n\
             ├── derivedFrom: model:m@1\n\
             │   └── trainedOn: dataset:sha256:aa (dataset corpus)\n\
             └── trainedOn: dataset:sha256:aa (dataset corpus) (above)\n"
        );
    }
}
