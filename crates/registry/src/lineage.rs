//! The lineage graph: edges "child was built from parent" between `model:<id>@<version>`,
//! `dataset:sha256:…` and `source:<uri>` nodes (trainedOn, derivedFrom, sourcedFrom), walked
//! up or down with one recursive query (`WITH RECURSIVE`, the same text on SQLite and
//! PostgreSQL). The walk is bounded by depth, so cycles cannot make it run away; it goes one
//! level further than asked to tell whether the answer is `truncated`.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::Row;

use crate::codes;
use crate::db::{Db, Tx, db_err};
use crate::entity::{Direction, LineageEdge, LineageGraph, LineageNode};
use crate::error::{ErrorKind, RegistryError, Result};

/// Deepest walk a query may ask for.
pub const MAX_DEPTH: u32 = 32;

pub(crate) async fn insert_edge(
    tx: &mut Tx,
    child: &str,
    parent: &str,
    relation: &str,
) -> Result<()> {
    sqlx::query("INSERT INTO lineage_edges (child, parent, relation) VALUES ($1, $2, $3)")
        .bind(child)
        .bind(parent)
        .bind(relation)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    Ok(())
}

const UP: &str = "WITH RECURSIVE walk(child, parent, relation, depth) AS ( \
    SELECT child, parent, relation, 1 FROM lineage_edges WHERE child = $1 \
    UNION \
    SELECT e.child, e.parent, e.relation, w.depth + 1 FROM lineage_edges e \
    JOIN walk w ON e.child = w.parent WHERE w.depth <= $2) \
    SELECT child, parent, relation, CAST(MIN(depth) AS BIGINT) AS d FROM walk \
    GROUP BY child, parent, relation";

const DOWN: &str = "WITH RECURSIVE walk(child, parent, relation, depth) AS ( \
    SELECT child, parent, relation, 1 FROM lineage_edges WHERE parent = $1 \
    UNION \
    SELECT e.child, e.parent, e.relation, w.depth + 1 FROM lineage_edges e \
    JOIN walk w ON e.parent = w.child WHERE w.depth <= $2) \
    SELECT child, parent, relation, CAST(MIN(depth) AS BIGINT) AS d FROM walk \
    GROUP BY child, parent, relation";

/// Walks from `root` (a node id that exists).
pub async fn walk(db: &Db, root: &str, direction: Direction, depth: u32) -> Result<LineageGraph> {
    if depth > MAX_DEPTH {
        return Err(RegistryError::new(
            ErrorKind::Invalid,
            codes::MG0306,
            format!("depth {depth} is above the limit of {MAX_DEPTH}"),
        )
        .at("/depth"));
    }
    let mut nodes: BTreeMap<String, u32> = BTreeMap::new();
    nodes.insert(root.to_string(), 0);
    let mut edges = BTreeSet::new();
    let mut truncated = false;
    {
        let rows = sqlx::query(if direction == Direction::Up { UP } else { DOWN })
            .bind(root)
            .bind(i64::from(depth))
            .fetch_all(db.pool())
            .await
            .map_err(db_err)?;
        for r in rows {
            let child: String = r.try_get("child").map_err(db_err)?;
            let parent: String = r.try_get("parent").map_err(db_err)?;
            let relation: String = r.try_get("relation").map_err(db_err)?;
            let d = r.try_get::<i64, _>("d").map_err(db_err)? as u32;
            if d > depth {
                truncated = true;
                continue;
            }
            let far = if direction == Direction::Up {
                parent.clone()
            } else {
                child.clone()
            };
            let e = nodes.entry(far).or_insert(d);
            *e = (*e).min(d);
            edges.insert(LineageEdge {
                from: child,
                to: parent,
                relation,
            });
        }
    }
    let labels = dataset_names(db, nodes.keys()).await?;
    let mut out: Vec<LineageNode> = nodes
        .into_iter()
        .map(|(id, depth)| {
            let (kind, label) = describe(&id, &labels);
            LineageNode {
                id,
                kind,
                label,
                depth,
            }
        })
        .collect();
    out.sort_by(|a, b| (a.depth, &a.id).cmp(&(b.depth, &b.id)));
    Ok(LineageGraph {
        root: root.to_string(),
        direction,
        depth,
        nodes: out,
        edges: edges.into_iter().collect(),
        truncated,
    })
}

fn describe(id: &str, labels: &BTreeMap<String, String>) -> (String, String) {
    if let Some(m) = id.strip_prefix("model:") {
        let name = m.rsplit_once('@').map(|(n, _)| n).unwrap_or(m);
        ("model".into(), name.into())
    } else if let Some(d) = id.strip_prefix("dataset:") {
        ("dataset".into(), labels.get(d).cloned().unwrap_or_default())
    } else if let Some(s) = id.strip_prefix("source:") {
        ("source".into(), s.into())
    } else {
        ("unknown".into(), id.into())
    }
}

async fn dataset_names<'a>(
    db: &Db,
    ids: impl Iterator<Item = &'a String>,
) -> Result<BTreeMap<String, String>> {
    let ids: Vec<&str> = ids.filter_map(|i| i.strip_prefix("dataset:")).collect();
    let mut out = BTreeMap::new();
    for chunk in ids.chunks(500) {
        let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT dataset_id, name FROM datasets WHERE dataset_id IN ({})",
            marks.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            q = q.bind(id.to_string());
        }
        for r in q.fetch_all(db.pool()).await.map_err(db_err)? {
            out.insert(
                r.try_get("dataset_id").map_err(db_err)?,
                r.try_get("name").map_err(db_err)?,
            );
        }
    }
    Ok(out)
}
