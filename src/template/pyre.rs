//! `modules.re`: the parts of Python's `re` module dbt packages call — `compile`, `match`,
//! `search`, `fullmatch`, `findall`, `sub`, `split`, `escape`, the flags, and match objects
//! (`group`, `groups`, `start`, `end`, `span`) — on Rust's `regex`, which reads Python's
//! syntax except look-around and back-references (those are an error naming the pattern).

use std::sync::Arc;

use minijinja::value::{Object, ObjectRepr, Value};
use minijinja::{Error, ErrorKind, State};

/// Python's flag values, as `re.IGNORECASE` etc. hold them.
const IGNORECASE: i64 = 2;
const MULTILINE: i64 = 8;
const DOTALL: i64 = 16;
const VERBOSE: i64 = 64;

#[derive(Debug)]
pub struct ReModule;

fn text(args: &[Value], i: usize, what: &str) -> Result<String, Error> {
    args.get(i)
        .filter(|v| !v.is_undefined() && !v.is_none())
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string())
        })
        .ok_or_else(|| Error::new(ErrorKind::MissingArgument, format!("re: missing {what}")))
}

fn flags_of(value: Option<&Value>) -> i64 {
    value.and_then(|v| v.as_i64()).unwrap_or(0)
}

/// Splits `args` into positional values and the value of the keyword `name`, if given.
fn kwarg(args: &[Value], name: &str) -> Result<(Vec<Value>, Option<Value>), Error> {
    let (positional, kwargs) = super::context::split_args(args)?;
    Ok((positional, kwargs.and_then(|k| k.peek::<Value>(name).ok())))
}

fn compile(pattern: &str, flags: i64) -> Result<Pattern, Error> {
    let mut prefix = String::new();
    for (bit, flag) in [
        (IGNORECASE, 'i'),
        (MULTILINE, 'm'),
        (DOTALL, 's'),
        (VERBOSE, 'x'),
    ] {
        if flags & bit != 0 {
            prefix.push(flag);
        }
    }
    let body = if prefix.is_empty() {
        pattern.to_string()
    } else {
        format!("(?{prefix}){pattern}")
    };
    let build = |text: &str| {
        regex::Regex::new(text).map_err(|e| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("re: cannot use the pattern `{pattern}`: {e} (look-around and back-references are not supported)"),
            )
        })
    };
    Ok(Pattern {
        pattern: pattern.to_string(),
        any: build(&body)?,
        start: build(&format!("\\A(?:{body})"))?,
        full: build(&format!("\\A(?:{body})\\z"))?,
    })
}

impl Object for ReModule {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(Value::from(match key.as_str()? {
            "IGNORECASE" | "I" => IGNORECASE,
            "MULTILINE" | "M" => MULTILINE,
            "DOTALL" | "S" => DOTALL,
            "VERBOSE" | "X" => VERBOSE,
            _ => return None,
        }))
    }

    fn call_method(
        self: &Arc<Self>,
        state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let (args, flags) = kwarg(args, "flags")?;
        match method {
            "escape" => Ok(Value::from(regex::escape(&text(&args, 0, "the text")?))),
            "compile" => {
                let flags = flags_of(flags.as_ref().or(args.get(1)));
                Ok(Value::from_object(compile(
                    &text(&args, 0, "the pattern")?,
                    flags,
                )?))
            }
            "sub" | "subn" => {
                let flags = flags_of(flags.as_ref().or(args.get(4)));
                let pattern = Arc::new(compile(&text(&args, 0, "the pattern")?, flags)?);
                pattern.call_method(state, method, &args[1..])
            }
            "split" => {
                let flags = flags_of(flags.as_ref().or(args.get(3)));
                let pattern = Arc::new(compile(&text(&args, 0, "the pattern")?, flags)?);
                pattern.call_method(state, method, &args[1..])
            }
            "match" | "search" | "fullmatch" | "findall" => {
                let flags = flags_of(flags.as_ref().or(args.get(2)));
                let pattern = Arc::new(compile(&text(&args, 0, "the pattern")?, flags)?);
                pattern.call_method(state, method, &args[1..2.min(args.len())])
            }
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("modules.re.{method}() is not supported by strata"),
            )),
        }
    }
}

/// A compiled pattern (`re.compile`).
#[derive(Debug)]
struct Pattern {
    pattern: String,
    any: regex::Regex,
    start: regex::Regex,
    full: regex::Regex,
}

/// A Python replacement (`\1`, `\g<name>`) in Rust's syntax (`${1}`, `${name}`).
fn replacement(python: &str) -> String {
    let mut out = String::with_capacity(python.len());
    let mut chars = python.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match chars.peek().copied() {
                Some(d) if d.is_ascii_digit() => {
                    let mut digits = String::new();
                    while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                        digits.push(d);
                        chars.next();
                    }
                    out.push_str(&format!("${{{digits}}}"));
                }
                Some('g') => {
                    chars.next();
                    if chars.peek() == Some(&'<') {
                        chars.next();
                        let name: String = chars.by_ref().take_while(|c| *c != '>').collect();
                        out.push_str(&format!("${{{name}}}"));
                    } else {
                        out.push_str("\\g");
                    }
                }
                Some('n') => {
                    chars.next();
                    out.push('\n');
                }
                Some('\\') => {
                    chars.next();
                    out.push('\\');
                }
                _ => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    out
}

impl Object for Pattern {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        (key.as_str()? == "pattern").then(|| Value::from(self.pattern.clone()))
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let (args, count) = kwarg(args, "count")?;
        match method {
            "match" | "search" | "fullmatch" => {
                let haystack = text(&args, 0, "the text")?;
                let regex = match method {
                    "match" => &self.start,
                    "fullmatch" => &self.full,
                    _ => &self.any,
                };
                Ok(match regex.captures(&haystack) {
                    Some(captures) => Value::from_object(Match::new(regex, &captures)),
                    None => Value::from(()),
                })
            }
            "findall" => {
                let haystack = text(&args, 0, "the text")?;
                let groups = self.any.captures_len() - 1;
                let found: Vec<Value> = self
                    .any
                    .captures_iter(&haystack)
                    .map(|c| {
                        let group = |i: usize| Value::from(c.get(i).map_or("", |m| m.as_str()));
                        match groups {
                            0 => group(0),
                            1 => group(1),
                            n => Value::from((1..=n).map(group).collect::<Vec<_>>()),
                        }
                    })
                    .collect();
                Ok(Value::from(found))
            }
            "sub" | "subn" => {
                let repl = text(&args, 0, "the replacement")?;
                let haystack = text(&args, 1, "the text")?;
                let limit = count
                    .or_else(|| args.get(2).cloned())
                    .and_then(|v| v.as_i64())
                    .unwrap_or(0)
                    .max(0) as usize;
                let matches = self.any.find_iter(&haystack).count();
                let replaced = self
                    .any
                    .replacen(&haystack, limit, replacement(&repl).as_str())
                    .into_owned();
                Ok(if method == "sub" {
                    Value::from(replaced)
                } else {
                    let n = if limit == 0 {
                        matches
                    } else {
                        matches.min(limit)
                    };
                    Value::from(vec![Value::from(replaced), Value::from(n)])
                })
            }
            "split" => {
                let haystack = text(&args, 0, "the text")?;
                let limit = args.get(1).and_then(|v| v.as_i64()).unwrap_or(0);
                let parts: Vec<Value> = if limit > 0 {
                    self.any
                        .splitn(&haystack, limit as usize + 1)
                        .map(Value::from)
                        .collect()
                } else {
                    self.any.split(&haystack).map(Value::from).collect()
                };
                Ok(Value::from(parts))
            }
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("re pattern .{method}() is not supported by strata"),
            )),
        }
    }
}

/// A match (`re.match(…)`): truthy, with its groups.
#[derive(Debug)]
struct Match {
    groups: Vec<Option<(usize, usize, String)>>,
    names: Vec<Option<String>>,
}

impl Match {
    fn new(regex: &regex::Regex, captures: &regex::Captures<'_>) -> Match {
        Match {
            groups: (0..captures.len())
                .map(|i| {
                    captures
                        .get(i)
                        .map(|m| (m.start(), m.end(), m.as_str().to_string()))
                })
                .collect(),
            names: regex
                .capture_names()
                .map(|n| n.map(str::to_string))
                .collect(),
        }
    }

    fn index(&self, key: &Value) -> Option<usize> {
        match key.as_str() {
            Some(name) => self.names.iter().position(|n| n.as_deref() == Some(name)),
            None => key.as_i64().and_then(|i| usize::try_from(i).ok()),
        }
    }

    fn group(&self, i: usize) -> Value {
        match self.groups.get(i) {
            Some(Some((_, _, text))) => Value::from(text.clone()),
            _ => Value::from(()),
        }
    }
}

impl Object for Match {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let at = |default: usize| -> Result<usize, Error> {
            match args.first() {
                None => Ok(default),
                Some(key) => self.index(key).ok_or_else(|| {
                    Error::new(ErrorKind::InvalidOperation, format!("re: no group {key}"))
                }),
            }
        };
        let span = |i: usize| {
            self.groups
                .get(i)
                .and_then(|g| g.as_ref())
                .map(|(s, e, _)| (*s, *e))
        };
        match method {
            "group" if args.len() > 1 => Ok(Value::from(
                args.iter()
                    .map(|k| self.index(k).map_or(Value::from(()), |i| self.group(i)))
                    .collect::<Vec<_>>(),
            )),
            "group" => Ok(self.group(at(0)?)),
            "groups" => Ok(Value::from(
                (1..self.groups.len())
                    .map(|i| self.group(i))
                    .collect::<Vec<_>>(),
            )),
            "start" => Ok(Value::from(span(at(0)?).map_or(-1, |(s, _)| s as i64))),
            "end" => Ok(Value::from(span(at(0)?).map_or(-1, |(_, e)| e as i64))),
            "span" => {
                let (s, e) = span(at(0)?).map_or((-1, -1), |(s, e)| (s as i64, e as i64));
                Ok(Value::from(vec![Value::from(s), Value::from(e)]))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.groups.first() {
            Some(Some((s, e, text))) => {
                write!(f, "<re.Match object; span=({s}, {e}), match='{text}'>")
            }
            _ => f.write_str("<re.Match object>"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(template: &str) -> String {
        let mut env = minijinja::Environment::new();
        env.add_global("re", Value::from_object(ReModule));
        env.render_str(template, ()).expect("renders")
    }

    #[test]
    fn python_re_calls_give_pythons_answers() {
        assert_eq!(render("{{ re.match('ab+', 'abbbc').group(0) }}"), "abbb");
        assert_eq!(render("{{ re.match('b', 'abc') is none }}"), "True");
        assert_eq!(
            render("{{ re.search('(\\\\d+)-(\\\\d+)', 'x 12-34 y').groups() }}"),
            "['12', '34']"
        );
        assert_eq!(
            render("{{ re.findall('[a-z]+', 'ab 12 cd') }}"),
            "['ab', 'cd']"
        );
        assert_eq!(
            render("{{ re.sub('(\\\\w+)@(\\\\w+)', '\\\\2 at \\\\1', 'me@home') }}"),
            "home at me"
        );
        assert_eq!(
            render("{{ re.split(',\\\\s*', 'a, b,c') }}"),
            "['a', 'b', 'c']"
        );
        assert_eq!(
            render("{{ re.compile('ORDERS', re.IGNORECASE).fullmatch('orders') is not none }}"),
            "True"
        );
        assert_eq!(render("{{ re.escape('a.b') }}"), "a\\.b");
    }
}
