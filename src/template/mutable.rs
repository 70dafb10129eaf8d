//! Mutable lists and dicts for dbt-style macros.
//!
//! dbt macros build values imperatively (`{% set cols = [] %}{% do cols.append(c) %}`,
//! `{% do d.update({...}) %}`), but minijinja values are immutable. Rather than fork minijinja,
//! the source rewriter wraps list and dict literals assigned with `{% set %}` in
//! `__strata_mutable(...)`, which returns these objects: they behave as sequences and maps for
//! reading, and accept Python's mutating methods.

use std::sync::{Arc, Mutex, MutexGuard};

use indexmap::IndexMap;
use minijinja::value::{Enumerator, Object, ObjectRepr, Value, ValueKind};
use minijinja::{Error, ErrorKind, State};

/// A Python-style list whose `append`/`extend`/`insert`/`pop`/`remove` mutate in place.
#[derive(Debug, Default)]
pub struct MutableList(Mutex<Vec<Value>>);

/// A Python-style dict whose `update`/`pop`/`setdefault` mutate in place.
#[derive(Debug, Default)]
pub struct MutableMap(Mutex<IndexMap<Value, Value>>);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means another render panicked; the data is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `__strata_mutable(value)`: lists and maps become mutable objects; anything else passes through.
pub fn make_mutable(value: Value) -> Result<Value, Error> {
    match value.kind() {
        ValueKind::Seq if value.downcast_object_ref::<MutableList>().is_none() => {
            let items: Vec<Value> = value.try_iter()?.collect();
            Ok(Value::from_object(MutableList(Mutex::new(items))))
        }
        ValueKind::Map if value.downcast_object_ref::<MutableMap>().is_none() => {
            let mut map = IndexMap::new();
            for key in value.try_iter()? {
                let item = value.get_item(&key)?;
                map.insert(key, item);
            }
            Ok(Value::from_object(MutableMap(Mutex::new(map))))
        }
        _ => Ok(value),
    }
}

fn no_kwargs(args: &[Value]) -> Result<(), Error> {
    if args.iter().any(Value::is_kwargs) {
        return Err(Error::new(
            ErrorKind::TooManyArguments,
            "this method takes no keyword arguments",
        ));
    }
    Ok(())
}

fn arity(method: &str, args: &[Value], min: usize, max: usize) -> Result<(), Error> {
    no_kwargs(args)?;
    if args.len() < min || args.len() > max {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!(
                "`{method}` takes {min} to {max} arguments, got {}",
                args.len()
            ),
        ));
    }
    Ok(())
}

impl Object for MutableList {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let items = lock(&self.0);
        let index = key.as_i64()?;
        let index = if index < 0 {
            items.len() as i64 + index
        } else {
            index
        };
        usize::try_from(index)
            .ok()
            .and_then(|i| items.get(i).cloned())
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(lock(&self.0).clone())
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(lock(&self.0).len())
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "append" => {
                arity(method, args, 1, 1)?;
                lock(&self.0).push(args[0].clone());
                Ok(Value::from(()))
            }
            "extend" => {
                arity(method, args, 1, 1)?;
                let new: Vec<Value> = args[0].try_iter()?.collect();
                lock(&self.0).extend(new);
                Ok(Value::from(()))
            }
            "insert" => {
                arity(method, args, 2, 2)?;
                let mut items = lock(&self.0);
                let index = args[0].as_usize().unwrap_or(items.len()).min(items.len());
                items.insert(index, args[1].clone());
                Ok(Value::from(()))
            }
            "pop" => {
                arity(method, args, 0, 1)?;
                let mut items = lock(&self.0);
                let index = match args.first() {
                    Some(i) => {
                        let i = i.as_i64().unwrap_or(-1);
                        if i < 0 {
                            items.len() as i64 + i
                        } else {
                            i
                        }
                    }
                    None => items.len() as i64 - 1,
                };
                match usize::try_from(index).ok().filter(|i| *i < items.len()) {
                    Some(i) => Ok(items.remove(i)),
                    None => Err(Error::new(
                        ErrorKind::InvalidOperation,
                        "pop from empty list or index out of range",
                    )),
                }
            }
            "remove" => {
                arity(method, args, 1, 1)?;
                let mut items = lock(&self.0);
                match items.iter().position(|v| v == &args[0]) {
                    Some(i) => {
                        items.remove(i);
                        Ok(Value::from(()))
                    }
                    None => Err(Error::new(
                        ErrorKind::InvalidOperation,
                        "list.remove(x): x not in list",
                    )),
                }
            }
            "index" => {
                arity(method, args, 1, 1)?;
                let items = lock(&self.0);
                items
                    .iter()
                    .position(|v| v == &args[0])
                    .map(Value::from)
                    .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "value not in list"))
            }
            "count" => {
                arity(method, args, 1, 1)?;
                Ok(Value::from(
                    lock(&self.0).iter().filter(|v| *v == &args[0]).count(),
                ))
            }
            "clear" => {
                arity(method, args, 0, 0)?;
                lock(&self.0).clear();
                Ok(Value::from(()))
            }
            "reverse" => {
                arity(method, args, 0, 0)?;
                lock(&self.0).reverse();
                Ok(Value::from(()))
            }
            "sort" => {
                arity(method, args, 0, 0)?;
                lock(&self.0).sort();
                Ok(Value::from(()))
            }
            "copy" => {
                arity(method, args, 0, 0)?;
                Ok(Value::from_object(MutableList(Mutex::new(
                    lock(&self.0).clone(),
                ))))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

impl Object for MutableMap {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        lock(&self.0).get(key).cloned()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(lock(&self.0).keys().cloned().collect())
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(lock(&self.0).len())
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "update" => {
                let mut map = lock(&self.0);
                for arg in args {
                    if arg.is_kwargs() {
                        let kwargs = minijinja::value::Kwargs::try_from(arg.clone())?;
                        for key in kwargs.args() {
                            map.insert(Value::from(key), kwargs.peek::<Value>(key)?);
                        }
                    } else {
                        for key in arg.try_iter()? {
                            let item = arg.get_item(&key)?;
                            map.insert(key, item);
                        }
                    }
                }
                Ok(Value::from(()))
            }
            "pop" => {
                arity(method, args, 1, 2)?;
                let removed = lock(&self.0).shift_remove(&args[0]);
                match (removed, args.get(1)) {
                    (Some(v), _) => Ok(v),
                    (None, Some(default)) => Ok(default.clone()),
                    (None, None) => Err(Error::new(
                        ErrorKind::InvalidOperation,
                        format!("key {} not in dict", args[0]),
                    )),
                }
            }
            "setdefault" => {
                arity(method, args, 1, 2)?;
                let default = args.get(1).cloned().unwrap_or(Value::from(()));
                Ok(lock(&self.0)
                    .entry(args[0].clone())
                    .or_insert(default)
                    .clone())
            }
            "get" => {
                arity(method, args, 1, 2)?;
                Ok(lock(&self.0)
                    .get(&args[0])
                    .cloned()
                    .unwrap_or_else(|| args.get(1).cloned().unwrap_or(Value::from(()))))
            }
            "keys" => {
                arity(method, args, 0, 0)?;
                Ok(Value::from(
                    lock(&self.0).keys().cloned().collect::<Vec<_>>(),
                ))
            }
            "values" => {
                arity(method, args, 0, 0)?;
                Ok(Value::from(
                    lock(&self.0).values().cloned().collect::<Vec<_>>(),
                ))
            }
            "items" => {
                arity(method, args, 0, 0)?;
                Ok(Value::from(
                    lock(&self.0)
                        .iter()
                        .map(|(k, v)| Value::from(vec![k.clone(), v.clone()]))
                        .collect::<Vec<_>>(),
                ))
            }
            "clear" => {
                arity(method, args, 0, 0)?;
                lock(&self.0).clear();
                Ok(Value::from(()))
            }
            "copy" => {
                arity(method, args, 0, 0)?;
                Ok(Value::from_object(MutableMap(Mutex::new(
                    lock(&self.0).clone(),
                ))))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

/// Wraps list and dict literals assigned by `{% set name = [...] %}` / `{% set name = {...} %}`
/// (and `dict(...)`) in `__strata_mutable(...)`. Lines are preserved, so error lines stay right.
pub fn rewrite_mutable_sets(source: &str) -> Option<String> {
    if !source.contains("set") {
        return None;
    }
    let mut out = String::with_capacity(source.len() + 64);
    let mut rest = source;
    let mut changed = false;
    while let Some(open) = rest.find("{%") {
        out.push_str(&rest[..open]);
        let tag_start = &rest[open..];
        let Some(close) = tag_start.find("%}") else {
            out.push_str(tag_start);
            rest = "";
            break;
        };
        let tag = &tag_start[..close + 2];
        rest = &tag_start[close + 2..];
        match rewrite_set_tag(tag) {
            Some(new) => {
                out.push_str(&new);
                changed = true;
            }
            None => out.push_str(tag),
        }
    }
    out.push_str(rest);
    changed.then_some(out)
}

fn rewrite_set_tag(tag: &str) -> Option<String> {
    // tag: "{%" ["-"|"+"] ws "set" ws target "=" rhs ["-"|"+"] "%}"
    let inner_start = 2 + usize::from(tag[2..].starts_with(['-', '+']));
    let body = &tag[inner_start..tag.len() - 2];
    let (body, trail) = match body.strip_suffix(['-', '+']) {
        Some(b) => (b, &tag[inner_start + b.len()..tag.len() - 2]),
        None => (body, ""),
    };
    let trimmed = body.trim_start();
    let after_set = trimmed.strip_prefix("set")?;
    if !after_set.starts_with(char::is_whitespace) {
        return None;
    }
    let eq = after_set.find('=')?;
    let target = &after_set[..eq];
    if target.trim().is_empty() || target.contains(['(', '[', '{', '"', '\'']) {
        return None;
    }
    let rhs = after_set[eq + 1..].trim();
    let wrap = rhs.starts_with('[') || rhs.starts_with('{') || rhs.starts_with("dict(");
    if !wrap || after_set[eq + 1..].starts_with('=') {
        return None;
    }
    let leading_ws = &body[..body.len() - trimmed.len()];
    Some(format!(
        "{}{}set{}= __strata_mutable({}) {}%}}",
        &tag[..inner_start],
        leading_ws,
        target,
        rhs,
        trail
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_list_and_dict_literals_only() {
        let src = "{% set cols = [] %}\n{%- set d = {'a': 1} -%}\n{% set n = 3 %}{% set x %}body{% endset %}";
        let out = rewrite_mutable_sets(src).unwrap();
        assert_eq!(
            out,
            "{% set cols = __strata_mutable([]) %}\n{%- set d = __strata_mutable({'a': 1}) -%}\n{% set n = 3 %}{% set x %}body{% endset %}"
        );
        assert_eq!(out.lines().count(), src.lines().count());
        assert!(rewrite_mutable_sets("select 1").is_none());
    }
}
