//! Snapshots: dbt's slowly changing dimensions of type 2. Each run compares the source query
//! with the snapshot's current versions, by `unique_key`: a changed row closes its current
//! version (`dbt_valid_to`) and opens a new one (`dbt_valid_from`); a new key opens its first;
//! a key gone from the source is left (`hard_deletes: ignore`), closed (`invalidate`), or
//! closed with a deletion record after it (`new_record`, `dbt_is_deleted`). A change is a
//! newer `updated_at` (`strategy: timestamp`) or a different value in `check_cols`
//! (`strategy: check`, the run's time standing for `updated_at`).
//!
//! The run stages its changes aside (one statement, so one clock reading), then applies them
//! in one commit: an update of the versions it closes and an insert of those it opens, in one
//! transaction where the warehouse has them, else one `MERGE`. A failed run leaves the
//! snapshot as it was.
//!
//! Plans and SQL only: pure functions of the snapshot's config and what the warehouse holds.

use crate::adapter::{ColumnInfo, Flavour, StatementKind};
use crate::plan::{Block, ColumnDef, Plan, Role, Step};
use crate::relation::{QuoteStyle, RelationName};

use super::plans::{drop_table, publish, Build};
use super::{MaterializeError, Request};

/// The column a staged change carries its kind in: `insert`, `update` or `delete`.
pub const CHANGE_TYPE: &str = "dbt_change_type";

/// How a snapshot tells a changed row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    /// A newer `updated_at` than the current version's `dbt_valid_from`.
    Timestamp { updated_at: String },
    /// A different value in any of these columns (`all`: every column of the source).
    Check {
        columns: CheckColumns,
        /// Where given, the change's time; else the run's.
        updated_at: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckColumns {
    All,
    Listed(Vec<String>),
}

/// What a snapshot does with a key that is gone from its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HardDeletes {
    Ignore,
    Invalidate,
    NewRecord,
}

/// The names of the columns a snapshot adds (`snapshot_meta_column_names`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaColumns {
    pub valid_from: String,
    pub valid_to: String,
    pub scd_id: String,
    pub updated_at: String,
    pub is_deleted: String,
}

/// A snapshot's settings, from its config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotSettings {
    pub strategy: Strategy,
    /// Column names or expressions, as dbt takes them.
    pub unique_key: Vec<String>,
    pub hard_deletes: HardDeletes,
    pub meta: MetaColumns,
    /// `dbt_valid_to_current`: the SQL a current version's `dbt_valid_to` holds instead of NULL.
    pub valid_to_current: Option<String>,
    /// The run's time as the snapshot's table stores it (dbt's `snapshot_get_time()`).
    pub now: String,
}

fn text(value: Option<&serde_json::Value>) -> Option<String> {
    match value? {
        serde_json::Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    }
}

impl SnapshotSettings {
    /// Reads a snapshot's config; what is missing or unknown is an error naming the key.
    pub fn from_request(
        request: &Request<'_>,
        flavour: &dyn Flavour,
    ) -> Result<SnapshotSettings, MaterializeError> {
        let config = request.config_map;
        let needs = |what: &str| MaterializeError::Config("snapshot".into(), what.into());
        let unique_key = request.config.unique_key.clone();
        if unique_key.is_empty() {
            return Err(needs(
                "a `unique_key` (the column or columns that name a row across versions)",
            ));
        }
        let updated_at = text(config.get("updated_at"));
        let strategy = match text(config.get("strategy")).as_deref() {
            Some("timestamp") => Strategy::Timestamp {
                updated_at: updated_at.ok_or_else(|| {
                    needs("`updated_at` with `strategy: timestamp` (the column holding each row's last change)")
                })?,
            },
            Some("check") => {
                let columns = match config.get("check_cols") {
                    Some(serde_json::Value::String(s)) if s == "all" => CheckColumns::All,
                    Some(serde_json::Value::Array(items)) if !items.is_empty() => {
                        CheckColumns::Listed(
                            items
                                .iter()
                                .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
                                .collect(),
                        )
                    }
                    _ => {
                        return Err(needs(
                            "`check_cols` with `strategy: check` (`all`, or a list of columns)",
                        ))
                    }
                };
                Strategy::Check {
                    columns,
                    updated_at,
                }
            }
            Some(other) => {
                return Err(MaterializeError::Settings(format!(
                    "snapshot strategy `{other}` is not one strata runs: use `timestamp` or `check`"
                )))
            }
            None => return Err(needs("a `strategy` (`timestamp` or `check`)")),
        };
        let hard_deletes = match text(config.get("hard_deletes")).as_deref() {
            Some("ignore") => HardDeletes::Ignore,
            Some("invalidate") => HardDeletes::Invalidate,
            Some("new_record") => HardDeletes::NewRecord,
            Some(other) => {
                return Err(MaterializeError::Settings(format!(
                    "`hard_deletes: {other}` is not one of ignore, invalidate, new_record"
                )))
            }
            // dbt's older flag.
            None if config
                .get("invalidate_hard_deletes")
                .and_then(serde_json::Value::as_bool)
                == Some(true) =>
            {
                HardDeletes::Invalidate
            }
            None => HardDeletes::Ignore,
        };
        let names = config.get("snapshot_meta_column_names");
        let name =
            |key: &str| text(names.and_then(|n| n.get(key))).unwrap_or_else(|| key.to_string());
        Ok(SnapshotSettings {
            strategy,
            unique_key,
            hard_deletes,
            meta: MetaColumns {
                valid_from: name("dbt_valid_from"),
                valid_to: name("dbt_valid_to"),
                scd_id: name("dbt_scd_id"),
                updated_at: name("dbt_updated_at"),
                is_deleted: name("dbt_is_deleted"),
            },
            valid_to_current: text(config.get("dbt_valid_to_current")),
            now: flavour.snapshot_time(request.storage),
        })
    }

    /// The expression each version's time comes from: the source's `updated_at`, or the run's.
    fn updated_at(&self) -> String {
        match &self.strategy {
            Strategy::Timestamp { updated_at }
            | Strategy::Check {
                updated_at: Some(updated_at),
                ..
            } => updated_at.clone(),
            Strategy::Check {
                updated_at: None, ..
            } => self.now.clone(),
        }
    }

    /// `dbt_scd_id`: a hash of the key and the version's time.
    fn scd_id(&self, flavour: &dyn Flavour, updated_at: &str) -> String {
        let parts: Vec<String> = self
            .unique_key
            .iter()
            .map(String::as_str)
            .chain(std::iter::once(updated_at))
            .map(|part| format!("coalesce(cast({part} as {}), '')", flavour.text_type()))
            .collect();
        flavour.md5_sql(&parts.join(" || '|' || "))
    }

    /// A current version's `dbt_valid_to`, typed as `updated_at` is.
    fn valid_to_current(&self, updated_at: &str) -> String {
        let current = self.valid_to_current.as_deref().unwrap_or("null");
        format!("coalesce(nullif({updated_at}, {updated_at}), {current})")
    }

    /// Which versions are current.
    fn is_current(&self, qualifier: &str, style: &QuoteStyle) -> String {
        let valid_to = format!("{qualifier}{}", style.quote_identifier(&self.meta.valid_to));
        match &self.valid_to_current {
            Some(current) => format!("({valid_to} = {current} or {valid_to} is null)"),
            None => format!("{valid_to} is null"),
        }
    }

    /// `key as dbt_unique_key` (or `_1`, `_2`, … for several).
    fn key_fields(&self) -> String {
        self.key_names()
            .iter()
            .zip(&self.unique_key)
            .map(|(name, key)| format!("{key} as {name}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn key_names(&self) -> Vec<String> {
        if self.unique_key.len() == 1 {
            vec!["dbt_unique_key".into()]
        } else {
            (1..=self.unique_key.len())
                .map(|i| format!("dbt_unique_key_{i}"))
                .collect()
        }
    }

    fn key_join(&self, left: &str, right: &str) -> String {
        self.key_names()
            .iter()
            .map(|k| format!("{left}.{k} = {right}.{k}"))
            .collect::<Vec<_>>()
            .join(" and ")
    }
}

/// The first build: every source row as its first version.
pub fn first_select(flavour: &dyn Flavour, s: &SnapshotSettings, sql: &str) -> String {
    let style = flavour.quote_style(StatementKind::Dml);
    let q = |name: &str| style.quote_identifier(name);
    let updated_at = s.updated_at();
    let mut select = format!(
        "select *, {} as {}, {updated_at} as {}, {updated_at} as {}, {} as {}",
        s.scd_id(flavour, &updated_at),
        q(&s.meta.scd_id),
        q(&s.meta.updated_at),
        q(&s.meta.valid_from),
        s.valid_to_current(&updated_at),
        q(&s.meta.valid_to),
    );
    if s.hard_deletes == HardDeletes::NewRecord {
        select.push_str(&format!(", 'False' as {}", q(&s.meta.is_deleted)));
    }
    format!("{select}\nfrom (\n{}\n) as snapshot_query", sql.trim())
}

/// A later build's changes: one row per version to open (`insert`), per version to close
/// (`update`, `delete`, carrying the closed version's `dbt_scd_id` and its new
/// `dbt_valid_to`), read from the source rows staged in `source` and the snapshot's current
/// versions. `source_columns` are the staged rows'; `existing` the snapshot table's.
pub fn staging_select(
    flavour: &dyn Flavour,
    s: &SnapshotSettings,
    source: &RelationName,
    snapshot: &RelationName,
    source_columns: &[ColumnInfo],
    existing: &[ColumnInfo],
) -> String {
    let style = flavour.quote_style(StatementKind::Dml);
    let q = |name: &str| style.quote_identifier(name);
    let m = &s.meta;
    let now = &s.now;
    let updated_at = s.updated_at();
    let keys = s.key_fields();
    let key_null = |alias: &str| format!("{alias}.{} is null", s.key_names()[0]);
    let new_record = s.hard_deletes == HardDeletes::NewRecord;
    let deleted = |alias: &str| format!("{alias}.{} = 'True'", q(&m.is_deleted));
    let has = |name: &str| existing.iter().any(|c| c.name.eq_ignore_ascii_case(name));
    let row_changed = match &s.strategy {
        Strategy::Timestamp { updated_at } => format!(
            "(snapshotted_data.{} < source_data.{updated_at})",
            q(&m.valid_from)
        ),
        Strategy::Check { columns, .. } => {
            let names: Vec<String> = match columns {
                CheckColumns::All => source_columns.iter().map(|c| c.name.clone()).collect(),
                CheckColumns::Listed(listed) => listed.clone(),
            };
            // A column new to the snapshot changes every row, as in dbt.
            if names.iter().any(|n| !has(n.trim_matches('"'))) {
                "(true)".to_string()
            } else {
                let each: Vec<String> = names
                    .iter()
                    .map(|n| {
                        let c = if matches!(columns, CheckColumns::All) {
                            q(n)
                        } else {
                            n.clone()
                        };
                        format!(
                            "snapshotted_data.{c} <> source_data.{c} or ((snapshotted_data.{c} is null) <> (source_data.{c} is null))"
                        )
                    })
                    .collect();
                format!("({})", each.join(" or "))
            }
        }
    };
    let changed = if new_record {
        format!("({row_changed} or {})", deleted("snapshotted_data"))
    } else {
        row_changed.clone()
    };
    let mut sql = format!(
        "with snapshot_query as (\n    select * from {source}\n),\nsnapshotted_data as (\n    select *, {keys} from {snapshot} where {current}\n),\ninsertions_source_data as (\n    select *, {keys}, {updated_at} as {u}, {updated_at} as {vf}, {vt_current} as {vt}, {scd} as {id} from snapshot_query\n),\nupdates_source_data as (\n    select *, {keys}, {updated_at} as {u}, {updated_at} as {vf}, {updated_at} as {vt} from snapshot_query\n),\ndeletes_source_data as (\n    select *, {keys} from snapshot_query\n),\ninsertions as (\n    select 'insert' as {ct}, source_data.*{insert_deleted}\n    from insertions_source_data as source_data\n    left outer join snapshotted_data on {join}\n    where {snap_null} or (not {snap_null} and {changed})\n),\nupdates as (\n    select 'update' as {ct}, source_data.*, snapshotted_data.{id}{update_deleted}\n    from updates_source_data as source_data\n    join snapshotted_data on {join}\n    where {changed}\n)",
        source = source.render(&style),
        snapshot = snapshot.render(&style),
        current = s.is_current("", &style),
        u = q(&m.updated_at),
        vf = q(&m.valid_from),
        vt = q(&m.valid_to),
        id = q(&m.scd_id),
        ct = q(CHANGE_TYPE),
        vt_current = s.valid_to_current(&updated_at),
        scd = s.scd_id(flavour, &updated_at),
        join = s.key_join("snapshotted_data", "source_data"),
        snap_null = key_null("snapshotted_data"),
        insert_deleted = if new_record {
            format!(", 'False' as {}", q(&m.is_deleted))
        } else {
            String::new()
        },
        update_deleted = if new_record {
            format!(", snapshotted_data.{}", q(&m.is_deleted))
        } else {
            String::new()
        },
    );
    let mut unions = vec!["insertions", "updates"];
    if s.hard_deletes != HardDeletes::Ignore {
        // Not a key whose current version already records its deletion.
        let not_already = if new_record {
            format!(
                " and not ({} and {})",
                deleted("snapshotted_data"),
                s.is_current("snapshotted_data.", &style)
            )
        } else {
            String::new()
        };
        sql.push_str(&format!(
            ",\ndeletes as (\n    select 'delete' as {ct}, source_data.*, {now} as {u}, {now} as {vf}, {now} as {vt}, snapshotted_data.{id}{deleted_col}\n    from snapshotted_data\n    left join deletes_source_data as source_data on {join}\n    where {source_null}{not_already}\n)",
            ct = q(CHANGE_TYPE),
            u = q(&m.updated_at),
            vf = q(&m.valid_from),
            vt = q(&m.valid_to),
            id = q(&m.scd_id),
            deleted_col = if new_record {
                format!(", snapshotted_data.{}", q(&m.is_deleted))
            } else {
                String::new()
            },
            join = s.key_join("snapshotted_data", "source_data"),
            source_null = key_null("source_data"),
        ));
        unions.push("deletes");
        if new_record {
            // The deletion record: the last version's values, opened now and current.
            let values: Vec<String> = source_columns
                .iter()
                .map(|c| {
                    let from = if has(&c.name) {
                        "snapshotted_data"
                    } else {
                        "source_data"
                    };
                    format!("{from}.{}", q(&c.name))
                })
                .collect();
            let key_values: Vec<String> = s
                .key_names()
                .iter()
                .map(|k| format!("snapshotted_data.{k} as {k}"))
                .collect();
            let new_id = flavour.md5_sql(&format!(
                "coalesce(cast(snapshotted_data.{} as {t}), '') || '|' || coalesce(cast({now} as {t}), '')",
                q(&m.scd_id),
                t = flavour.text_type()
            ));
            sql.push_str(&format!(
                ",\ndeletion_records as (\n    select 'insert' as {ct}, {values}, {key_values}, {now} as {u}, {now} as {vf}, snapshotted_data.{vt} as {vt}, {new_id} as {id}, 'True' as {d}\n    from snapshotted_data\n    left join deletes_source_data as source_data on {join}\n    where {source_null}{not_already}\n)",
                ct = q(CHANGE_TYPE),
                values = values.join(", "),
                key_values = key_values.join(", "),
                u = q(&m.updated_at),
                vf = q(&m.valid_from),
                vt = q(&m.valid_to),
                id = q(&m.scd_id),
                d = q(&m.is_deleted),
                join = s.key_join("snapshotted_data", "source_data"),
                source_null = key_null("source_data"),
            ));
            unions.push("deletion_records");
        }
    }
    let selects: Vec<String> = unions
        .iter()
        .map(|u| format!("select * from {u}"))
        .collect();
    sql.push_str(&format!("\n{}", selects.join("\nunion all\n")));
    sql
}

/// What a later run writes, known from the source's columns: the columns the snapshot gains,
/// and those an opened version fills (the snapshot's columns the staged changes carry; one
/// the source no longer has stays NULL).
#[derive(Debug, Clone)]
pub struct Shape {
    pub added: Vec<ColumnInfo>,
    pub filled: Vec<String>,
    /// The staged changes' columns, as [`staging_select`] names them.
    pub staged: Vec<String>,
}

impl Shape {
    pub fn of(
        s: &SnapshotSettings,
        source_columns: &[ColumnInfo],
        existing: &[ColumnInfo],
    ) -> Shape {
        let added: Vec<ColumnInfo> = source_columns
            .iter()
            .filter(|c| {
                !existing
                    .iter()
                    .any(|e| e.name.eq_ignore_ascii_case(&c.name))
            })
            .cloned()
            .collect();
        let m = &s.meta;
        let mut staged: Vec<String> = std::iter::once(CHANGE_TYPE.to_string())
            .chain(source_columns.iter().map(|c| c.name.clone()))
            .chain(s.key_names())
            .chain(
                [&m.updated_at, &m.valid_from, &m.valid_to, &m.scd_id]
                    .into_iter()
                    .cloned(),
            )
            .collect();
        if s.hard_deletes == HardDeletes::NewRecord {
            staged.push(m.is_deleted.clone());
        }
        let mut shape = Shape {
            added,
            filled: Vec::new(),
            staged,
        };
        shape.filled = existing
            .iter()
            .chain(&shape.added)
            .filter(|c| shape.stages(&c.name))
            .map(|c| c.name.clone())
            .collect();
        shape
    }

    fn stages(&self, name: &str) -> bool {
        self.staged.iter().any(|c| c.eq_ignore_ascii_case(name))
    }
}

/// The plan of a later build once its changes are staged: the source's new columns added,
/// then the versions closed and opened in one commit; staging and source rows dropped.
pub fn apply(
    b: &Build,
    s: &SnapshotSettings,
    staged: &RelationName,
    source: &RelationName,
    shape: &Shape,
) -> Plan {
    let mut steps = Vec::new();
    if !shape.added.is_empty() {
        steps.push(Step::AddColumns {
            relation: b.relation.clone(),
            columns: shape.added.iter().map(ColumnDef::from).collect(),
        });
    }
    let count = vec![steps.len()];
    steps.push(Step::ApplySnapshot {
        relation: b.relation.clone(),
        staged: staged.clone(),
        columns: shape.filled.clone(),
        scd_id: s.meta.scd_id.clone(),
        valid_to: s.meta.valid_to.clone(),
        change_type: CHANGE_TYPE.into(),
    });
    let mut blocks = publish(b, steps, b.flavour.capabilities().transactions);
    blocks.push(Block::new(
        Role::Cleanup,
        false,
        vec![drop_table(staged), drop_table(source)],
    ));
    Plan {
        blocks,
        on_failure: vec![drop_table(staged), drop_table(source)],
        count,
    }
}

/// Where rows cannot be updated in place (Athena's Hive tables): the snapshot's next state
/// as one query — every version kept, those the staged changes close given their
/// `dbt_valid_to`, then the versions they open — which the table build writes aside and
/// swaps in. `existing` are the snapshot's columns, `added` the source's new ones; values fit
/// the snapshot's storage (Athena's Hive tables keep timestamps to milliseconds).
pub fn rebuild_select(
    b: &Build,
    s: &SnapshotSettings,
    staged: &RelationName,
    existing: &[ColumnInfo],
    shape: &Shape,
) -> String {
    let added = &shape.added;
    let (flavour, storage, snapshot) = (b.flavour, b.storage, b.relation);
    let style = flavour.quote_style(StatementKind::Dml);
    let q = |name: &str| style.quote_identifier(name);
    let (id, valid_to) = (q(&s.meta.scd_id), q(&s.meta.valid_to));
    let ct = q(CHANGE_TYPE);
    // Each value as the snapshot's storage holds it, in both halves of the union.
    let fit = |expr: String, c: &ColumnInfo| {
        format!(
            "{} as {}",
            flavour.fit_to_storage(&expr, &c.data_type, storage),
            q(&c.name)
        )
    };
    // A column the snapshot lacks reads NULL, typed as the staged column it is added from.
    let kept: Vec<String> = existing
        .iter()
        .map(|c| {
            let name = q(&c.name);
            if name == valid_to {
                fit(format!("case when closed.{id} is not null then closed.{valid_to} else snapshot.{valid_to} end"), c)
            } else {
                fit(format!("snapshot.{name}"), c)
            }
        })
        .chain(
            added
                .iter()
                .map(|c| fit(format!("case when 1 = 0 then closed.{} end", q(&c.name)), c)),
        )
        .collect();
    let opened: Vec<String> = existing
        .iter()
        .chain(added)
        .map(|c| {
            if shape.stages(&c.name) {
                fit(format!("opened.{}", q(&c.name)), c)
            } else {
                fit(
                    format!("case when 1 = 0 then snapshot_columns.{} end", q(&c.name)),
                    c,
                )
            }
        })
        .collect();
    let closed_columns: Vec<String> = [id.clone(), valid_to.clone()]
        .into_iter()
        .chain(added.iter().map(|c| q(&c.name)))
        .collect();
    let snapshot = snapshot.render(&style);
    let staged = staged.render(&style);
    format!(
        "select {kept}\nfrom {snapshot} as snapshot\nleft join (\n    select {closed_columns} from {staged} where {ct} in ('update', 'delete')\n) as closed on snapshot.{id} = closed.{id}\nunion all\nselect {opened}\nfrom {staged} as opened\nleft join (select * from {snapshot} where 1 = 0) as snapshot_columns on 1 = 0\nwhere opened.{ct} = 'insert'",
        kept = kept.join(", "),
        closed_columns = closed_columns.join(", "),
        opened = opened.join(", "),
    )
}

/// The source rows staged aside and the unique-key check on them: a key twice in one run's
/// source would open two current versions, so it stops the run before anything is written.
pub fn stage_source(b: &Build, sql: &str, s: &SnapshotSettings) -> (RelationName, Plan) {
    let (source, mut plan) = super::plans::new_rows(b, sql);
    if s.unique_key.iter().all(|k| is_column_name(k)) {
        plan.blocks.push(Block::new(
            Role::Prepare,
            false,
            vec![Step::CheckUniqueKey {
                relation: source.clone(),
                key: s.unique_key.clone(),
            }],
        ));
    }
    (source, plan)
}

/// The staged changes, built aside from the staged source rows.
pub fn stage_changes(b: &Build, select: String, source: &RelationName) -> (RelationName, Plan) {
    let staged = b.aside(crate::plan::aside::CHANGES);
    let plan = Plan {
        blocks: vec![Block::new(
            Role::Prepare,
            false,
            vec![Step::CreateTableAs {
                relation: staged.clone(),
                select,
                storage: b.flavour.scratch_storage(&staged),
                replace: false,
            }],
        )],
        on_failure: vec![drop_table(&staged), drop_table(source)],
        count: Vec::new(),
    };
    (staged, plan)
}

/// After a rebuild (which swapped the next state in as a table build does): the staged
/// changes and source rows dropped.
pub fn cleanup(staged: &RelationName, source: &RelationName) -> Plan {
    Plan {
        blocks: vec![Block::new(
            Role::Cleanup,
            false,
            vec![drop_table(staged), drop_table(source)],
        )],
        ..Plan::default()
    }
}

/// Whether a `unique_key` entry is a plain column name (not an expression).
fn is_column_name(key: &str) -> bool {
    !key.is_empty() && key.chars().all(|c| c.is_alphanumeric() || c == '_')
}
