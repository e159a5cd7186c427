//! A pipe as one query: each node rendered with the request's variables and parsed on its own, the earlier nodes
//! becoming CTEs the later ones read by name. Used wherever a pipe runs (endpoints, `/v0/sql`, materialized views,
//! copies); what the query may read is `access`'s concern.

use super::error::ApiError;
use crate::engine::compat;
use crate::resources::Pipe;
use crate::template;
use datafusion::sql::sqlparser::ast::{Cte, Ident, Query, TableAlias, With, helpers::attached_token::AttachedToken};
use tinybird_template::Variables;

/// Renders a pipe's nodes and composes them into one tree: earlier nodes become CTEs the later ones read by name.
/// Each node is parsed on its own, so no node's text can change how another one parses.
pub(super) fn pipe_query(
    pipe: &Pipe,
    vars: &Variables,
    test_mode: bool,
    flavor: compat::Flavor,
) -> Result<Query, ApiError> {
    let Some((last, earlier)) = pipe.nodes.split_last() else {
        return Err(ApiError::bad_request(format!("Pipe '{}' has no nodes", pipe.name)));
    };
    let mut ctes = Vec::with_capacity(earlier.len());
    for node in earlier {
        let sql = template::render(&node.sql, vars, test_mode).map_err(render_failure)?;
        let query = compat::parse_for(&sql, flavor).map_err(|e| in_node(&pipe.name, &node.name, e))?;
        ctes.push(Cte {
            alias: TableAlias {
                explicit: false,
                name: Ident::with_quote('`', node.name.clone()),
                columns: vec![],
                at: None,
            },
            query: Box::new(query),
            from: None,
            materialized: None,
            closing_paren_token: AttachedToken::empty(),
        });
    }
    let sql = template::render(&last.sql, vars, test_mode).map_err(render_failure)?;
    let mut query = compat::parse_for(&sql, flavor).map_err(|e| in_node(&pipe.name, &last.name, e))?;
    if !ctes.is_empty() {
        match &mut query.with {
            Some(with) => {
                ctes.append(&mut with.cte_tables);
                with.cte_tables = ctes;
            }
            None => query.with = Some(With { with_token: AttachedToken::empty(), recursive: false, cte_tables: ctes }),
        }
    }
    Ok(query)
}

fn in_node(pipe: &str, node: &str, e: crate::engine::EngineError) -> ApiError {
    let mut error = ApiError::from(e);
    if let Some(text) = error.body["error"].as_str() {
        error.body["error"] = format!("{text} (pipe '{pipe}', node '{node}')").into();
    }
    error
}

pub(super) fn render_failure(e: template::RenderFailure) -> ApiError {
    match e.custom_body {
        Some(body) => ApiError::raw(e.status, body),
        None => ApiError::new(e.status, e.message),
    }
}
