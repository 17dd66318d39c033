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

/// The walk, one statement: edges up to `depth` hops (an edge's depth is the hop at which it
/// is crossed), each with the label of its far end (a dataset's name) and, at the last hop,
/// whether the far end has edges beyond (`truncated`). `NEAR`/`FAR` are `child`/`parent`
/// walking up and the reverse walking down.
fn walk_sql(direction: Direction) -> String {
    let (near, far) = match direction {
        Direction::Up => ("child", "parent"),
        Direction::Down => ("parent", "child"),
    };
    format!(
        "WITH RECURSIVE walk(child, parent, relation, depth) AS ( \
         SELECT child, parent, relation, 1 FROM lineage_edges WHERE {near} = $1 \
         UNION \
         SELECT e.child, e.parent, e.relation, w.depth + 1 FROM lineage_edges e \
         JOIN walk w ON e.{near} = w.{far} WHERE w.depth < $2) \
         SELECT g.child, g.parent, g.relation, g.d, \
         CASE WHEN g.{far} LIKE 'dataset:%' THEN \
           (SELECT name FROM datasets WHERE dataset_id = SUBSTR(g.{far}, 9)) END AS label, \
         CAST(CASE WHEN g.d = $2 AND EXISTS \
           (SELECT 1 FROM lineage_edges x WHERE x.{near} = g.{far}) THEN 1 ELSE 0 END AS BIGINT) \
           AS more \
         FROM (SELECT child, parent, relation, CAST(MIN(depth) AS BIGINT) AS d FROM walk \
         GROUP BY child, parent, relation) g"
    )
}

/// Walks from `root` (a node id that exists; `root_label` its label).
pub async fn walk(
    db: &Db,
    root: &str,
    root_label: &str,
    direction: Direction,
    depth: u32,
) -> Result<LineageGraph> {
    if depth > MAX_DEPTH {
        return Err(RegistryError::new(
            ErrorKind::Invalid,
            codes::MG0306,
            format!("depth {depth} is above the limit of {MAX_DEPTH}"),
        )
        .at("/depth"));
    }
    let mut nodes: BTreeMap<String, (u32, Option<String>)> = BTreeMap::new();
    nodes.insert(root.to_string(), (0, Some(root_label.to_string())));
    let mut edges = BTreeSet::new();
    let mut truncated = false;
    if depth > 0 {
        let rows = sqlx::query(sqlx::AssertSqlSafe(walk_sql(direction)))
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
            let label: Option<String> = r.try_get("label").map_err(db_err)?;
            truncated |= r.try_get::<i64, _>("more").map_err(db_err)? != 0;
            let far = if direction == Direction::Up {
                parent.clone()
            } else {
                child.clone()
            };
            let e = nodes.entry(far).or_insert((d, label));
            e.0 = e.0.min(d);
            edges.insert(LineageEdge {
                from: child,
                to: parent,
                relation,
            });
        }
    } else {
        let more = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT 1 FROM lineage_edges WHERE {} = $1 LIMIT 1",
            if direction == Direction::Up {
                "child"
            } else {
                "parent"
            }
        )))
        .bind(root)
        .fetch_optional(db.pool())
        .await
        .map_err(db_err)?;
        truncated = more.is_some();
    }
    let mut out: Vec<LineageNode> = nodes
        .into_iter()
        .map(|(id, (depth, label))| {
            let (kind, fallback) = describe(&id);
            LineageNode {
                id,
                kind,
                label: label.unwrap_or(fallback),
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

/// A node's kind and its label when the database has none (a model's id, a source's URI).
fn describe(id: &str) -> (String, String) {
    if let Some(m) = id.strip_prefix("model:") {
        let name = m.rsplit_once('@').map(|(n, _)| n).unwrap_or(m);
        ("model".into(), name.into())
    } else if id.starts_with("dataset:") {
        ("dataset".into(), String::new())
    } else if let Some(s) = id.strip_prefix("source:") {
        ("source".into(), s.into())
    } else {
        ("unknown".into(), id.into())
    }
}
