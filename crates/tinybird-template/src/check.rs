//! The reference's security validation (`check_valid_code` for `{{ }}`, `check_valid_control_statement` for
//! `{% %}`), with its exact messages.

use std::collections::VecDeque;

use crate::expr::{BinOp, Const, Expr, ExprKind, UnOp};

/// Methods callable inside `{{ }}`.
pub(crate) const VALID_METHOD_NAMES: &[&str] = &["split", "get", "join", "replace"];

/// Builtins that evaluate code or reflect; never callable anywhere.
pub(crate) const UNSAFE_NAMES: &[&str] = &[
    "eval",
    "exec",
    "compile",
    "getattr",
    "setattr",
    "delattr",
    "globals",
    "locals",
    "vars",
    "dir",
    "breakpoint",
    "help",
    "memoryview",
    "type",
    "object",
    "super",
    "classmethod",
    "staticmethod",
    "property",
    "exit",
    "quit",
];

const UNSAFE_ATTRIBUTE_NAMES: &[&str] = &[
    "format",
    "format_map",
    "mro",
    "gi_frame",
    "gi_code",
    "gi_yieldfrom",
    "cr_frame",
    "cr_code",
    "cr_await",
    "cr_origin",
    "ag_frame",
    "ag_code",
    "ag_await",
    "f_globals",
    "f_locals",
    "f_builtins",
    "f_back",
    "f_code",
    "tb_frame",
    "tb_next",
];

pub(crate) fn is_dunder(name: &str) -> bool {
    name.len() > 4 && name.starts_with("__") && name.ends_with("__")
}

/// `check_valid_expr`: the allow-list applied to `{{ }}` expressions.
pub(crate) fn check_output_expr(e: &Expr) -> Result<(), (String, usize)> {
    let at = e.span.start;
    match &e.kind {
        ExprKind::Call { func, args, kwargs } => {
            match &func.kind {
                ExprKind::Name(n) => {
                    if !crate::registry::is_callable(n) {
                        return Err((format!("Invalid function name: {n}"), at));
                    }
                }
                ExprKind::Call { .. } => check_output_expr(func)?,
                ExprKind::Attr { value, attr } => {
                    if !VALID_METHOD_NAMES.contains(&attr.as_str()) {
                        return Err((format!("Invalid method name: {attr}"), at));
                    }
                    check_output_expr(value)?;
                }
                _ => return Err((format!("Invalid function: {}", e.dump()), at)),
            }
            for a in args {
                check_output_expr(a)?;
            }
            // Keyword values only get the checks that block interpreter internals, as in the reference.
            for (_, v) in kwargs {
                check_control_expr(v)?;
            }
            Ok(())
        }
        ExprKind::Const(c) => match c {
            Const::None | Const::Bool(_) | Const::Int(_) | Const::Float(_) | Const::Str(_) => Ok(()),
        },
        ExprKind::Name(n) => {
            if is_dunder(n) {
                Err((format!("Invalid name: {n}"), at))
            } else {
                Ok(())
            }
        }
        ExprKind::Unary { op, operand } => {
            match op {
                UnOp::Neg | UnOp::Not => {}
                UnOp::Pos => return Err(("Invalid UnaryOp: UAdd()".into(), at)),
                UnOp::Invert => return Err(("Invalid UnaryOp: Invert()".into(), at)),
            }
            check_output_expr(operand)
        }
        ExprKind::Bin { op, left, right } => {
            if !matches!(op, BinOp::Add | BinOp::Sub | BinOp::Mul) {
                return Err((format!("Invalid BinOp: {}()", binop_name(*op)), at));
            }
            check_output_expr(left)?;
            check_output_expr(right)
        }
        ExprKind::Subscript { value, index } => {
            check_output_expr(value)?;
            match &index.kind {
                ExprKind::Slice { lower, upper, step } => {
                    for part in [lower, upper, step].into_iter().flatten() {
                        check_output_expr(part)?;
                    }
                    Ok(())
                }
                ExprKind::Const(_) | ExprKind::Subscript { .. } => check_output_expr(index),
                _ => Err((format!("Invalid Slice expression: {}", index.dump()), index.span.start)),
            }
        }
        ExprKind::Dict(pairs) => {
            for (k, _) in pairs {
                check_output_expr(k)?;
            }
            for (_, v) in pairs {
                check_output_expr(v)?;
            }
            Ok(())
        }
        ExprKind::Tuple(items) | ExprKind::List(items) | ExprKind::Set(items) => {
            items.iter().try_for_each(check_output_expr)
        }
        ExprKind::IfExp { test, body, orelse } => {
            check_output_expr(test)?;
            check_output_expr(body)?;
            check_output_expr(orelse)
        }
        _ => Err((format!("Invalid expression type: {}", e.dump()), at)),
    }
}

fn binop_name(op: BinOp) -> &'static str {
    match op {
        BinOp::Add => "Add",
        BinOp::Sub => "Sub",
        BinOp::Mul => "Mult",
        BinOp::Div => "Div",
        BinOp::FloorDiv => "FloorDiv",
        BinOp::Mod => "Mod",
        BinOp::Pow => "Pow",
        BinOp::MatMul => "MatMult",
        BinOp::BitOr => "BitOr",
        BinOp::BitAnd => "BitAnd",
        BinOp::BitXor => "BitXor",
        BinOp::LShift => "LShift",
        BinOp::RShift => "RShift",
    }
}

/// `_check_node_is_safe` over every node (breadth first, like `ast.walk`): the looser rules of `{% %}`.
pub(crate) fn check_control_expr(e: &Expr) -> Result<(), (String, usize)> {
    let mut queue = VecDeque::from([e]);
    while let Some(node) = queue.pop_front() {
        match &node.kind {
            ExprKind::Call { func, .. } => {
                if let ExprKind::Name(n) = &func.kind
                    && UNSAFE_NAMES.contains(&n.as_str())
                {
                    return Err((format!("Invalid function name: {n}"), node.span.start));
                }
            }
            ExprKind::Attr { attr, .. } if attr.starts_with('_') || UNSAFE_ATTRIBUTE_NAMES.contains(&attr.as_str()) => {
                return Err((format!("Invalid attribute: {attr}"), node.span.start));
            }
            ExprKind::Name(n) if is_dunder(n) => {
                return Err((format!("Invalid name: {n}"), node.span.start));
            }
            _ => {}
        }
        queue.extend(node.children());
    }
    Ok(())
}
