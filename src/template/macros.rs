//! Project macros as dbt has them: global, callable from any model or macro by bare name, able
//! to `return()` a value, and seeing the calling model's `ref`, `this` and `config`.
//!
//! minijinja macros belong to the template that defines them and see only their closure and the
//! render's root. strata therefore renames every `{% macro name %}` to a private name in its
//! file and registers a [`MacroProxy`] global under the public name. A proxy call renders the
//! macro's file with the *caller's* root context and calls the private macro there, so each
//! call has its own state (for `return()`), and macros in different files find each other
//! through the globals.

use std::sync::Arc;

use minijinja::value::{Kwargs, Object, ObjectRepr, Value};
use minijinja::{Error, ErrorKind, State};

/// The temp a `return()` call leaves its value in.
pub(crate) const RETURN_TEMP: &str = "__strata_return";
/// Prefix of the private, per-file macro names.
pub(crate) const PRIVATE_PREFIX: &str = "__strata_m_";

/// A macro definition found in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacroDef {
    /// The public name (`cents_to_dollars`, `test_not_null`, `materialization_x_default`).
    pub name: String,
    /// 1-based line of the definition.
    pub line: usize,
}

/// Rewrites a macro file: `{% macro x(` → `{% macro __strata_m_x(`, `{% test x(` →
/// `{% macro __strata_m_test_x(`, materialization blocks to plain macros. Lines are preserved.
pub fn rewrite_macro_file(source: &str) -> (String, Vec<MacroDef>) {
    let mut out = String::with_capacity(source.len() + 256);
    let mut defs = Vec::new();
    let mut rest = source;
    let mut line = 1;
    while let Some(open) = rest.find("{%") {
        let before = &rest[..open];
        line += before.matches('\n').count();
        out.push_str(before);
        let tag_src = &rest[open..];
        let Some(close) = tag_src.find("%}") else {
            out.push_str(tag_src);
            rest = "";
            break;
        };
        let tag = &tag_src[..close + 2];
        rest = &tag_src[close + 2..];
        let prefix_len = 2 + usize::from(tag[2..].starts_with(['-', '+']));
        let body = &tag[prefix_len..tag.len() - 2];
        let inner = body.trim_start();
        let lead = &tag[..prefix_len];
        let ws = &body[..body.len() - inner.len()];
        let rewritten = if let Some(after) = inner.strip_prefix("macro ") {
            let name = leading_identifier(after);
            defs.push(MacroDef {
                name: name.clone(),
                line,
            });
            let tail = &after.trim_start()[name.len()..];
            Some(format!("{lead}{ws}macro {PRIVATE_PREFIX}{name}{tail}%}}"))
        } else if let Some(after) = inner.strip_prefix("test ") {
            let name = leading_identifier(after);
            defs.push(MacroDef {
                name: format!("test_{name}"),
                line,
            });
            let tail = &after.trim_start()[name.len()..];
            Some(format!(
                "{lead}{ws}macro {PRIVATE_PREFIX}test_{name}{tail}%}}"
            ))
        } else if let Some(after) = inner.strip_prefix("materialization ") {
            // `{% materialization name, adapter='x' %}` → a macro nobody calls (yet).
            let name = leading_identifier(after);
            let adapter = after
                .split("adapter")
                .nth(1)
                .and_then(|a| a.split(['\'', '"']).nth(1))
                .unwrap_or("default");
            let public = format!("materialization_{name}_{adapter}");
            defs.push(MacroDef {
                name: public.clone(),
                line,
            });
            Some(format!("{lead}{ws}macro {PRIVATE_PREFIX}{public}() %}}"))
        } else if inner.starts_with("endtest") || inner.starts_with("endmaterialization") {
            let trail = if tag.ends_with("-%}") { "-" } else { "" };
            Some(format!("{lead} endmacro {trail}%}}"))
        } else {
            None
        };
        line += tag.matches('\n').count();
        out.push_str(rewritten.as_deref().unwrap_or(tag));
    }
    out.push_str(rest);
    (out, defs)
}

/// The identifier at the start of `text` (after spaces): a macro or test name.
fn leading_identifier(text: &str) -> String {
    text.trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// A project macro registered as a global under its public name.
#[derive(Debug)]
pub struct MacroProxy {
    /// The template (macro file) that defines it.
    pub template: Arc<str>,
    /// The private name inside that template.
    pub private: Arc<str>,
    /// The public name, for messages.
    pub name: Arc<str>,
}

impl MacroProxy {
    pub fn new(template: &str, name: &str) -> Self {
        MacroProxy {
            template: template.into(),
            private: format!("{PRIVATE_PREFIX}{name}").into(),
            name: name.into(),
        }
    }
}

impl Object for MacroProxy {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "name" => Some(Value::from(&*self.name)),
            _ => None,
        }
    }

    fn call(self: &Arc<Self>, state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let root = state.lookup(super::CONTEXT_KEY).unwrap_or(Value::UNDEFINED);
        if let Some(ctx) = root.downcast_object_ref::<super::RenderContext>() {
            ctx.capture()
                .inputs
                .macros
                .insert((self.template.clone(), self.name.clone()));
        }
        let args = eager_caller(state, args)?;
        let template = state.env().get_template(&self.template)?;
        let mut captured = template.render_captured(root)?;
        captured.with_state_mut(|macro_state| {
            let Some(function) = macro_state.lookup(&self.private) else {
                return Err(Error::new(
                    ErrorKind::UnknownFunction,
                    format!(
                        "macro `{}` is not defined in `{}`",
                        self.name, self.template
                    ),
                ));
            };
            match function.call(macro_state, &args) {
                Ok(value) => Ok(value),
                Err(err) => match macro_state.get_temp(RETURN_TEMP) {
                    Some(returned) => Ok(returned),
                    None => Err(err),
                },
            }
        })
    }
}

/// A `{% call %}` block's `caller` belongs to the calling state and cannot run inside the
/// macro's own state, so render its body here, once, and pass the text along.
fn eager_caller(state: &mut State<'_, '_>, args: &[Value]) -> Result<Vec<Value>, Error> {
    let Some(last) = args.last().filter(|v| v.is_kwargs()) else {
        return Ok(args.to_vec());
    };
    let kwargs = Kwargs::try_from(last.clone())?;
    if !kwargs.has("caller") {
        return Ok(args.to_vec());
    }
    let mut rebuilt: Vec<(String, Value)> = Vec::new();
    for key in kwargs.args() {
        let value: Value = kwargs.peek(key)?;
        if key == "caller" {
            let body = value.call(state, &[])?;
            rebuilt.push((key.to_string(), Value::from_function(move || body.clone())));
        } else {
            rebuilt.push((key.to_string(), value));
        }
    }
    let mut out = args[..args.len() - 1].to_vec();
    out.push(Value::from(rebuilt.into_iter().collect::<Kwargs>()));
    Ok(out)
}

/// `return(value)`: leaves the value for the enclosing macro proxy and stops the macro.
pub fn return_function(state: &mut State<'_, '_>, value: Option<Value>) -> Result<Value, Error> {
    state.set_temp(RETURN_TEMP, value.unwrap_or(Value::from(())));
    Err(Error::new(
        ErrorKind::InvalidOperation,
        "return() used outside of a macro",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_definitions_and_keeps_lines() {
        let src = "{% macro a(x) %}{{ x }}{% endmacro %}\n\n{%- test positive(model, column_name) -%}\nselect 1\n{%- endtest -%}\n";
        let (out, defs) = rewrite_macro_file(src);
        assert_eq!(
            defs,
            vec![
                MacroDef {
                    name: "a".into(),
                    line: 1
                },
                MacroDef {
                    name: "test_positive".into(),
                    line: 3
                }
            ]
        );
        assert!(out.contains("{% macro __strata_m_a(x) %}"), "{out}");
        assert!(
            out.contains("{%- macro __strata_m_test_positive(model, column_name) -%}"),
            "{out}"
        );
        assert!(out.contains("{%- endmacro -%}"), "{out}");
        assert_eq!(out.lines().count(), src.lines().count());
    }
}
