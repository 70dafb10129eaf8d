//! What templates may ask of a connected warehouse, with dbt's semantics: `run_query`,
//! `{% call statement(…) %}` with `load_result`, and the adapter's introspection
//! (`get_columns_in_relation`, `get_relation`, `list_relations_without_caching`, schemas).
//!
//! The run room provides a [`WarehouseAccess`] once it has connected; this room only shapes
//! what comes back as dbt's objects (agate-like tables, columns, relations). In the parse phase
//! nothing is executed: `run_query` is `none`, as dbt's is while `execute` is false, and every
//! call is recorded so the node is compiled again right before it runs, once its parents exist.

use std::collections::BTreeMap;
use std::sync::Arc;

use minijinja::value::{Enumerator, Object, ObjectRepr, Value};
use minijinja::{Error, ErrorKind, State};
use serde_json::Value as Json;

use super::context::RenderContext;
use crate::relation::{QuoteStyle, RelationName};

/// A query's answer: column names and types, and rows of JSON values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryResult {
    pub columns: Vec<(String, String)>,
    pub rows: Vec<Vec<Json>>,
}

/// A relation the warehouse holds.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundRelation {
    pub name: RelationName,
    /// `table` or `view`.
    pub kind: String,
    /// `(name, type)`, in order.
    pub columns: Vec<(String, String)>,
}

/// The warehouse as templates reach it. Every method blocks until the warehouse answers.
pub trait WarehouseAccess: Send + Sync + std::fmt::Debug {
    /// Runs a query and returns its rows.
    fn query(&self, sql: &str) -> Result<QueryResult, String>;
    /// Runs a statement; the warehouse's status (`OK`, `INSERT 0 3`, …).
    fn execute(&self, sql: &str) -> Result<String, String>;
    /// The relation at `name`, if any.
    fn relation(&self, name: &RelationName) -> Result<Option<FoundRelation>, String>;
    /// The columns a query returns, `(name, type)` with the warehouse's own type names, read
    /// from an empty table made from it beside `near` and dropped again.
    fn query_columns(
        &self,
        sql: &str,
        near: &RelationName,
    ) -> Result<Vec<(String, String)>, String>;
    /// Whether a schema exists, empty or not.
    fn schema_exists(&self, database: Option<&str>, schema: &str) -> Result<bool, String>;
    /// Every relation in a schema.
    fn list_relations(
        &self,
        database: Option<&str>,
        schema: &str,
    ) -> Result<Vec<FoundRelation>, String>;
    fn create_schema(&self, database: Option<&str>, schema: &str) -> Result<(), String>;
    fn drop_schema(&self, database: Option<&str>, schema: &str) -> Result<(), String>;
    fn drop_relation(&self, relation: &FoundRelation) -> Result<(), String>;
    /// Renames a relation within its schema.
    fn rename_relation(&self, relation: &FoundRelation, to: &str) -> Result<(), String>;
    /// Deletes every row of a table.
    fn truncate_relation(&self, relation: &RelationName) -> Result<(), String>;
}

/// The render's root context, for the warehouse and the statement results it keeps.
fn context(state: &State<'_, '_>) -> Option<Arc<RenderContext>> {
    state
        .lookup(super::CONTEXT_KEY)?
        .downcast_object::<RenderContext>()
}

/// The warehouse when the render may execute (compile phase, connected); `Ok(None)` in the
/// parse phase; an error naming the call when compiling without a connection.
fn warehouse(ctx: &RenderContext, what: &str) -> Result<Option<Arc<dyn WarehouseAccess>>, Error> {
    {
        let mut capture = ctx.capture();
        capture.reads.introspective = true;
        capture.reads.opaque = true;
    }
    if ctx.phase == super::Phase::Parse {
        return Ok(None);
    }
    match ctx.shared.warehouse.get() {
        Some(warehouse) => Ok(Some(warehouse.clone())),
        None => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("{what} needs a connection to the warehouse, and this command has none"),
        )),
    }
}

fn failed(what: &str, message: String) -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!("{what} failed in the warehouse: {message}"),
    )
}

/// `run_query(sql)`: the rows as a table (`none` while parsing).
pub fn run_query(state: &State<'_, '_>, sql: String) -> Result<Value, Error> {
    let Some(ctx) = context(state) else {
        return Ok(Value::from(()));
    };
    let Some(warehouse) = warehouse(&ctx, "run_query()")? else {
        return Ok(Value::from(()));
    };
    let result = warehouse
        .query(&sql)
        .map_err(|m| failed("run_query()", m))?;
    Ok(Value::from_object(Table::new(result)))
}

/// `{% call statement('name', fetch_result=True) %}SQL{% endcall %}`: runs the body and keeps
/// its result for `load_result('name')`.
pub fn statement(
    state: &mut State<'_, '_>,
    name: Option<Value>,
    kwargs: minijinja::value::Kwargs,
) -> Result<Value, Error> {
    let kwargs = Some(kwargs);
    let name = name
        .filter(|v| !v.is_none() && !v.is_undefined())
        .map(|v| v.to_string())
        .or_else(|| {
            kwargs
                .as_ref()
                .and_then(|k| k.peek::<Option<String>>("name").ok().flatten())
        });
    let fetch = kwargs
        .as_ref()
        .and_then(|k| k.peek::<Option<bool>>("fetch_result").ok().flatten())
        .unwrap_or(false);
    let sql = match kwargs.as_ref().and_then(|k| k.peek::<Value>("caller").ok()) {
        Some(caller) => caller.call(state, &[])?.to_string(),
        None => String::new(),
    };
    if let Some(kwargs) = &kwargs {
        for key in kwargs.args() {
            let _: Value = kwargs.peek(key)?;
        }
    }
    let Some(ctx) = context(state) else {
        return Ok(Value::from(""));
    };
    let Some(warehouse) = warehouse(&ctx, "a statement block")? else {
        return Ok(Value::from(""));
    };
    let sql = sql.trim();
    let (response, table) = if fetch {
        let result = warehouse
            .query(sql)
            .map_err(|m| failed("a statement block", m))?;
        let rows = result.rows.len();
        (format!("SELECT {rows}"), Some(Table::new(result)))
    } else {
        let status = warehouse
            .execute(sql)
            .map_err(|m| failed("a statement block", m))?;
        (status, None)
    };
    if let Some(name) = name {
        let table = table.map(Arc::new);
        let data: Vec<Value> = table
            .as_ref()
            .map(|t| {
                t.rows
                    .iter()
                    .map(|r| Value::from(r.values.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let mut result: BTreeMap<String, Value> = BTreeMap::new();
        result.insert("response".into(), response_value(&response));
        result.insert("data".into(), Value::from(data));
        result.insert(
            "table".into(),
            table.map(Value::from_dyn_object).unwrap_or(Value::from(())),
        );
        ctx.results().insert(name, Value::from_object(result));
    }
    Ok(Value::from(""))
}

/// dbt's adapter response: `_message`, `code`, `rows_affected`.
fn response_value(status: &str) -> Value {
    let code = status.split_whitespace().next().unwrap_or("OK").to_string();
    let rows = status
        .split_whitespace()
        .last()
        .and_then(|n| n.parse::<i64>().ok());
    let mut map: BTreeMap<String, Value> = BTreeMap::new();
    map.insert("_message".into(), Value::from(status));
    map.insert("code".into(), Value::from(code));
    map.insert(
        "rows_affected".into(),
        rows.map(Value::from).unwrap_or(Value::from(())),
    );
    Value::from_object(map)
}

/// `load_result('name')`: what the statement of that name returned, else `none`.
pub fn load_result(state: &State<'_, '_>, name: String) -> Value {
    match context(state) {
        Some(ctx) => ctx.results().get(&name).cloned().unwrap_or(Value::from(())),
        None => Value::from(()),
    }
}

/// The adapter methods that need the warehouse. `None` when `method` is not one of them.
pub fn adapter_method(
    state: &State<'_, '_>,
    method: &str,
    positional: &[Value],
    kwargs: Option<&minijinja::value::Kwargs>,
    style: QuoteStyle,
) -> Option<Result<Value, Error>> {
    let known = matches!(
        method,
        "get_columns_in_relation"
            | "get_relation"
            | "load_relation"
            | "list_relations_without_caching"
            | "list_relations"
            | "check_schema_exists"
            | "create_schema"
            | "drop_schema"
            | "drop_relation"
            | "rename_relation"
            | "truncate_relation"
            | "execute"
    );
    if !known {
        return None;
    }
    Some(introspect(state, method, positional, kwargs, style))
}

fn introspect(
    state: &State<'_, '_>,
    method: &str,
    positional: &[Value],
    kwargs: Option<&minijinja::value::Kwargs>,
    style: QuoteStyle,
) -> Result<Value, Error> {
    let what = format!("adapter.{method}()");
    let arg = |i: usize, name: &str| -> Option<Value> {
        positional
            .get(i)
            .cloned()
            .or_else(|| kwargs.and_then(|k| k.peek::<Value>(name).ok()))
            .filter(|v| !v.is_none() && !v.is_undefined())
    };
    let text = |v: Option<Value>| v.map(|v| v.to_string());
    let Some(ctx) = context(state) else {
        return Ok(Value::from(()));
    };
    let warehouse = warehouse(&ctx, &what)?;
    let Some(warehouse) = warehouse else {
        // Parsing: the answers dbt gives before anything runs.
        return Ok(match method {
            "get_columns_in_relation" | "list_relations_without_caching" | "list_relations" => {
                Value::from(Vec::<Value>::new())
            }
            "check_schema_exists" => Value::from(false),
            _ => Value::from(()),
        });
    };
    let failed = |m: String| failed(&what, m);
    match method {
        "get_columns_in_relation" => {
            let relation = relation_arg(arg(0, "relation"), &what)?;
            let found = warehouse.relation(&relation).map_err(failed)?;
            let columns = found.map(|r| r.columns).unwrap_or_default();
            Ok(Value::from(
                columns
                    .into_iter()
                    .map(|(name, data_type)| {
                        Value::from_object(ColumnValue {
                            name,
                            data_type,
                            style,
                        })
                    })
                    .collect::<Vec<_>>(),
            ))
        }
        "get_relation" => {
            let database = text(arg(0, "database"));
            let schema = text(arg(1, "schema")).unwrap_or_default();
            let identifier = text(arg(2, "identifier")).unwrap_or_default();
            let name = RelationName::new(database, schema, identifier);
            let found = warehouse.relation(&name).map_err(failed)?;
            Ok(found
                .map(|r| relation_value(r, style))
                .unwrap_or(Value::from(())))
        }
        "load_relation" => {
            let relation = relation_arg(arg(0, "relation"), &what)?;
            let found = warehouse.relation(&relation).map_err(failed)?;
            Ok(found
                .map(|r| relation_value(r, style))
                .unwrap_or(Value::from(())))
        }
        "list_relations_without_caching" | "list_relations" => {
            // A schema relation, or its names as text: `(schema)` or `(database, schema)`.
            let (database, schema) = match (arg(0, "schema_relation"), text(arg(1, "schema"))) {
                (Some(v), _) if v.as_str().is_none() => {
                    let relation = relation_arg(Some(v), &what)?;
                    (relation.database, relation.schema)
                }
                (Some(database), Some(schema)) => (Some(database.to_string()), schema),
                (Some(schema), None) => (None, schema.to_string()),
                (None, _) => {
                    return Err(Error::new(
                        ErrorKind::MissingArgument,
                        format!("{what} needs a schema relation"),
                    ))
                }
            };
            let found = warehouse
                .list_relations(database.as_deref(), &schema)
                .map_err(failed)?;
            Ok(Value::from(
                found
                    .into_iter()
                    .map(|r| relation_value(r, style))
                    .collect::<Vec<_>>(),
            ))
        }
        "check_schema_exists" => {
            let database = text(arg(0, "database"));
            let schema = text(arg(1, "schema")).unwrap_or_default();
            Ok(Value::from(
                warehouse
                    .schema_exists(database.as_deref(), &schema)
                    .map_err(failed)?,
            ))
        }
        "create_schema" | "drop_schema" => {
            let relation = relation_arg(arg(0, "relation"), &what)?;
            if method == "create_schema" {
                warehouse.create_schema(relation.database.as_deref(), &relation.schema)
            } else {
                warehouse.drop_schema(relation.database.as_deref(), &relation.schema)
            }
            .map_err(failed)?;
            Ok(Value::from(()))
        }
        "drop_relation" => {
            let relation = relation_arg(arg(0, "relation"), &what)?;
            if let Some(found) = warehouse.relation(&relation).map_err(failed)? {
                warehouse.drop_relation(&found).map_err(failed)?;
            }
            Ok(Value::from(()))
        }
        "rename_relation" => {
            let from = relation_arg(arg(0, "from_relation"), &what)?;
            let to = relation_arg(arg(1, "to_relation"), &what)?;
            let found = warehouse
                .relation(&from)
                .map_err(failed)?
                .ok_or_else(|| failed(format!("`{}` does not exist", from.dotted())))?;
            warehouse
                .rename_relation(&found, &to.identifier)
                .map_err(failed)?;
            Ok(Value::from(()))
        }
        "truncate_relation" => {
            let relation = relation_arg(arg(0, "relation"), &what)?;
            warehouse.truncate_relation(&relation).map_err(failed)?;
            Ok(Value::from(()))
        }
        // `adapter.execute(sql, fetch=False)` → (response, table)
        _ => {
            let sql = text(arg(0, "sql")).unwrap_or_default();
            let fetch = arg(2, "fetch").is_some_and(|v| v.is_true());
            if fetch {
                let result = warehouse.query(&sql).map_err(failed)?;
                let rows = result.rows.len();
                Ok(Value::from(vec![
                    response_value(&format!("SELECT {rows}")),
                    Value::from_object(Table::new(result)),
                ]))
            } else {
                let status = warehouse.execute(&sql).map_err(failed)?;
                Ok(Value::from(vec![
                    response_value(&status),
                    Value::from_object(Table::new(QueryResult::default())),
                ]))
            }
        }
    }
}

/// A relation argument: a relation object (`ref()`, `this`, `api.Relation.create`) or a
/// dotted name.
fn relation_arg(value: Option<Value>, what: &str) -> Result<RelationName, Error> {
    let Some(value) = value else {
        return Err(Error::new(
            ErrorKind::MissingArgument,
            format!("{what} needs a relation"),
        ));
    };
    if let Some(relation) = value.downcast_object_ref::<super::context::RelationValue>() {
        return Ok(relation.relation.clone());
    }
    let get = |key: &str| {
        value
            .get_attr(key)
            .ok()
            .filter(|v| !v.is_undefined() && !v.is_none())
            .map(|v| v.to_string())
    };
    match (get("schema"), get("identifier")) {
        (Some(schema), identifier) => Ok(RelationName::new(
            get("database"),
            schema,
            identifier.unwrap_or_default(),
        )),
        _ => {
            let text = value.to_string();
            let parts: Vec<&str> = text.split('.').map(|p| p.trim_matches('"')).collect();
            match parts.as_slice() {
                [schema, name] => Ok(RelationName::new(None, *schema, *name)),
                [database, schema, name] => Ok(RelationName::new(
                    Some(database.to_string()),
                    *schema,
                    *name,
                )),
                _ => Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!("{what} needs a relation, got `{text}`"),
                )),
            }
        }
    }
}

fn relation_value(found: FoundRelation, style: QuoteStyle) -> Value {
    Value::from_object(super::context::RelationValue {
        event_time: None,
        include_database: found.name.database.is_some(),
        relation: found.name,
        style,
        include_schema: true,
        cte_name: None,
        expression: None,
        kind: Some(found.kind),
    })
}

/// A column as dbt's `Column` (`.name`, `.data_type`, `.quoted`, `.is_string()`, …).
pub(crate) fn column_value(name: &str, data_type: &str, style: QuoteStyle) -> Value {
    Value::from_object(ColumnValue {
        name: name.to_string(),
        data_type: data_type.to_string(),
        style,
    })
}

/// A column as `adapter.get_columns_in_relation` returns it (dbt's `Column`).
#[derive(Debug)]
struct ColumnValue {
    name: String,
    data_type: String,
    style: QuoteStyle,
}

impl ColumnValue {
    fn base_type(&self) -> String {
        self.data_type
            .split('(')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    }
}

impl Object for ColumnValue {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(match key.as_str()? {
            "name" | "column" => Value::from(self.name.clone()),
            "data_type" | "dtype" => Value::from(self.data_type.clone()),
            "quoted" => Value::from(self.style.quote_identifier(&self.name)),
            _ => return None,
        })
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        _args: &[Value],
    ) -> Result<Value, Error> {
        let base = self.base_type();
        let is = |names: &[&str]| names.iter().any(|n| base.contains(n));
        Ok(Value::from(match method {
            "is_string" => is(&["char", "text", "string", "varchar"]),
            "is_integer" => is(&["int", "serial"]),
            "is_float" => is(&["float", "double", "real"]),
            "is_numeric" => is(&["numeric", "decimal"]),
            "is_number" => is(&[
                "int", "serial", "float", "double", "real", "numeric", "decimal",
            ]),
            _ => return Err(Error::from(ErrorKind::UnknownMethod)),
        }))
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<Column {} ({})>", self.name, self.data_type)
    }
}

/// An agate-like table: `.columns` (by position or name, each with `.values()`), `.rows` (each
/// by position or name), `.column_names`, `.column_types`, `print_table()`; iterating it
/// iterates its rows.
#[derive(Debug)]
pub struct Table {
    names: Vec<String>,
    types: Vec<String>,
    rows: Vec<Arc<Row>>,
}

#[derive(Debug)]
struct Row {
    names: Arc<Vec<String>>,
    values: Vec<Value>,
}

impl Table {
    fn new(result: QueryResult) -> Table {
        let names: Arc<Vec<String>> =
            Arc::new(result.columns.iter().map(|(n, _)| n.clone()).collect());
        let rows = result
            .rows
            .into_iter()
            .map(|row| {
                Arc::new(Row {
                    names: names.clone(),
                    values: row
                        .into_iter()
                        .map(|v| Value::from(minijinja::value::Serde(v)))
                        .collect(),
                })
            })
            .collect();
        Table {
            names: names.to_vec(),
            types: result.columns.into_iter().map(|(_, t)| t).collect(),
            rows,
        }
    }

    fn column(&self, index: usize) -> Value {
        Value::from_object(TableColumn {
            name: self.names[index].clone(),
            data_type: self.types[index].clone(),
            values: self.rows.iter().map(|r| r.values[index].clone()).collect(),
        })
    }

    fn text(&self) -> String {
        let mut out = format!("| {} |\n", self.names.join(" | "));
        for row in &self.rows {
            let cells: Vec<String> = row.values.iter().map(|v| v.to_string()).collect();
            out.push_str(&format!("| {} |\n", cells.join(" | ")));
        }
        out
    }
}

impl Object for Table {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Iterable
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(match key.as_str()? {
            "columns" => Value::from_object(Columns(self.clone())),
            "rows" => Value::from(
                self.rows
                    .iter()
                    .map(|r| Value::from_dyn_object(r.clone()))
                    .collect::<Vec<_>>(),
            ),
            "column_names" => Value::from(self.names.clone()),
            "column_types" => Value::from(self.types.clone()),
            _ => return None,
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(
            self.rows
                .iter()
                .map(|r| Value::from_dyn_object(r.clone()))
                .collect(),
        )
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.rows.len())
    }

    fn call_method(
        self: &Arc<Self>,
        state: &mut State<'_, '_>,
        method: &str,
        _args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "print_table" => {
                if let Some(ctx) = context(state) {
                    ctx.capture().logs.push(self.text());
                }
                Ok(Value::from(""))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text())
    }
}

/// A column's index by its name or by its position (negative from the end, as in Python).
fn position(names: &[String], key: &Value) -> Option<usize> {
    let index = match key.as_str() {
        Some(name) => names.iter().position(|n| n == name)?,
        None => {
            let i = key.as_i64()?;
            let len = names.len() as i64;
            usize::try_from(if i < 0 { len + i } else { i }).ok()?
        }
    };
    (index < names.len()).then_some(index)
}

/// `table.columns`: by position or by name.
#[derive(Debug)]
struct Columns(Arc<Table>);

impl Object for Columns {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let index = position(&self.0.names, key)?;
        Some(self.0.column(index))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.0.names.len())
    }
}

/// One column of a table.
#[derive(Debug)]
struct TableColumn {
    name: String,
    data_type: String,
    values: Vec<Value>,
}

impl Object for TableColumn {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(match key.as_str()? {
            "name" => Value::from(self.name.clone()),
            "data_type" => Value::from(self.data_type.clone()),
            _ => return None,
        })
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        _args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "values" => Ok(Value::from(self.values.clone())),
            "values_distinct" => {
                let mut seen: Vec<Value> = Vec::new();
                for v in &self.values {
                    if !seen.contains(v) {
                        seen.push(v.clone());
                    }
                }
                Ok(Value::from(seen))
            }
            "values_without_nulls" => Ok(Value::from(
                self.values
                    .iter()
                    .filter(|v| !v.is_none())
                    .cloned()
                    .collect::<Vec<_>>(),
            )),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

impl Object for Row {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.values.get(position(&self.names, key)?).cloned()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.values.len())
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        _args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "keys" => Ok(Value::from(self.names.to_vec())),
            "values" => Ok(Value::from(self.values.clone())),
            "items" | "dict" => {
                let pairs: Vec<Value> = self
                    .names
                    .iter()
                    .zip(&self.values)
                    .map(|(n, v)| Value::from(vec![Value::from(n.clone()), v.clone()]))
                    .collect();
                if method == "dict" {
                    let map: BTreeMap<String, Value> = self
                        .names
                        .iter()
                        .cloned()
                        .zip(self.values.iter().cloned())
                        .collect();
                    Ok(Value::from_object(map))
                } else {
                    Ok(Value::from(pairs))
                }
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}
