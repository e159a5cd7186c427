//! The macro's view of node SQL (Tinybird's template renderer, `tinybird.sql_template`): which names a template reads, through which typed function, and what
//! Tinybird would reject, each with its byte offset in the SQL. Parsing is `tinybird-template`'s, so the macro and
//! the local server agree on every template.

use crate::suggest;

/// A name read by the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Use {
    pub name: String,
    /// The function applied to it (`Int32`, `Array`, `defined`, …), or `None` for a bare use.
    pub func: Option<String>,
    /// For `Array(x, 'T')`: `T` (`String` when not given).
    pub array_elem: Option<String>,
    /// Byte offset of the name in the node SQL.
    pub offset: usize,
}

/// Something Tinybird would reject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub message: String,
    pub offset: usize,
}

/// What one node's SQL reads and what is wrong with it.
#[derive(Debug, Default)]
pub(crate) struct Analysis {
    pub uses: Vec<Use>,
    pub problems: Vec<Problem>,
    /// The template did not parse, so `uses` is not the whole story.
    pub incomplete: bool,
}

/// 1-based line and column (in characters) of `offset` in `sql`.
pub(crate) fn line_col(sql: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(sql.len());
    while !sql.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &sql[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Analyses one node's SQL.
pub(crate) fn analyze(sql: &str) -> Analysis {
    let mut out = Analysis::default();
    let Some(body) = tinybird_template::template_body(sql) else {
        if let Some(at) = sql.find("{{").or_else(|| sql.find("{%")) {
            out.problems.push(Problem {
                message: "In order to make a query dynamic, it is necessary to start the query with a % character"
                    .into(),
                offset: at,
            });
        }
        return out;
    };
    // `template_body` returns a slice of `sql`: where it starts is the body's offset in the SQL.
    let base = body.as_ptr() as usize - sql.as_ptr() as usize;
    let template = match tinybird_template::Template::parse(body) {
        Ok(t) => t,
        Err(err) => {
            let message = err.message();
            let mut message = message.strip_prefix("Template Syntax Error: ").unwrap_or(message).to_owned();
            if let Some(name) = message.strip_prefix("Invalid function name: ") {
                let hint = suggest::hint(name.trim(), tinybird_template::registry::suggestions());
                message.push_str(&hint);
            }
            out.problems.push(Problem { message, offset: base + err.offset() });
            out.incomplete = true;
            return out;
        }
    };
    let analysis = template.analyze();
    for call in &analysis.invalid_calls {
        out.problems.push(Problem {
            message: format!(
                "Invalid function name: {}{}",
                call.name,
                suggest::hint(&call.name, tinybird_template::registry::suggestions())
            ),
            offset: base + call.position.offset,
        });
    }
    for u in analysis.uses {
        if analysis.locals.iter().any(|l| l.name == u.name) {
            continue;
        }
        out.uses.push(Use {
            name: u.name,
            func: u.function,
            array_elem: u.array_type,
            offset: base + u.position.offset,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uses(sql: &str) -> Vec<(String, Option<String>)> {
        let a = analyze(sql);
        assert!(a.problems.is_empty(), "{:?}", a.problems);
        a.uses.into_iter().map(|u| (u.name, u.func)).collect()
    }

    #[test]
    fn finds_typed_and_bare_uses() {
        let got = uses(
            "%\nSELECT * FROM t WHERE a = {{String(a, 'x', description=\"d\")}} {% if defined(b) %} AND b IN {{Array(b, 'Int32')}}{% end %} LIMIT {{lim}}",
        );
        assert_eq!(
            got,
            vec![
                ("a".into(), Some("String".into())),
                ("b".into(), Some("defined".into())),
                ("b".into(), Some("Array".into())),
                ("lim".into(), None),
            ]
        );
    }

    #[test]
    fn locals_kwargs_and_methods_are_not_params() {
        let got = uses(
            "%\n{% set lim = Int32(limit, 5) %}{% for v in split_to_array(vals) %}{{v}}{% end %}{{sql_and(a__in=Array(a, 'Int32', defined=False))}} {{lim}} {{ x.get('k') }}",
        );
        let names: Vec<_> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["limit", "vals", "a", "x"]);
    }

    #[test]
    fn reports_what_tinybird_rejects() {
        let msgs = |sql: &str| analyze(sql).problems.into_iter().map(|p| p.message).collect::<Vec<_>>();
        let cases = [
            "%\nSELECT {{10**2}}",
            "%\n{% import os %}SELECT 1",
            "%\nSELECT 1 {% if defined(x) %} AND 1",
            "%\nSELECT {{ Strin(x) }}",
            "%\nSELECT {{ x ",
            "%\nSELECT 1 {% end %}",
            "%\nSELECT {{ String(x }}",
            "%\nSELECT {{ a == 1 }}",
            "SELECT {{x}}",
        ];
        let got: Vec<Vec<String>> = cases.iter().map(|c| msgs(c)).collect();
        insta::assert_debug_snapshot!(got);
        for (case, m) in cases.iter().zip(&got) {
            assert_eq!(m.len(), 1, "{case}: {m:?}");
        }
        assert_eq!(got[3], ["Invalid function name: Strin; did you mean `String`?"]);
    }

    #[test]
    fn positions_are_lines_and_columns_of_the_sql() {
        let sql = "%\nSELECT 1\nWHERE {{ x";
        let a = analyze(sql);
        assert_eq!(line_col(sql, a.problems[0].offset).0, 3);
    }
}
