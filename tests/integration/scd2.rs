//! Snapshots against an SCD type 2 history computed here, independently of strata: seeded
//! random sequences of source states (inserts, updates, deletes, revivals, unchanged rows,
//! rows whose `updated_at` moves without a change and rows that change without it, a column
//! added midway), each state seeded and snapshotted in turn by six snapshots of one source —
//! `timestamp` and `check` strategies, each with `hard_deletes` `ignore`, `invalidate` and
//! `new_record` — and after every run each snapshot table must hold exactly the history
//! dbt's documented semantics give. Times the run takes from the clock (a check snapshot's
//! versions, a deletion's) are compared by their order.

use std::collections::{BTreeMap, BTreeSet};

use crate::warehouse::{Kind, Warehouse};

/// A time in a history: a source row's `updated_at`, or the run that recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Time {
    /// Seconds after 2020-01-01 (every source time is before any run).
    Source(i64),
    Run(usize),
}

/// A source row.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    name: String,
    amount: i64,
    updated_at: i64,
    extra: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
struct Version {
    id: i64,
    name: Option<String>,
    amount: Option<i64>,
    extra: Option<String>,
    valid_from: Time,
    valid_to: Option<Time>,
    updated_at: Time,
    deleted: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strategy {
    Timestamp,
    Check,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Deletes {
    Ignore,
    Invalidate,
    NewRecord,
}

/// dbt's SCD type 2 semantics, written from its documentation, for one snapshot.
fn apply(
    history: &mut Vec<Version>,
    source: &BTreeMap<i64, Row>,
    run: usize,
    strategy: Strategy,
    deletes: Deletes,
) {
    let now = Time::Run(run);
    let current: BTreeMap<i64, usize> = history
        .iter()
        .enumerate()
        .filter(|(_, v)| v.valid_to.is_none())
        .map(|(i, v)| (v.id, i))
        .collect();
    let mut opened = Vec::new();
    for (id, row) in source {
        let time = match strategy {
            Strategy::Timestamp => Time::Source(row.updated_at),
            Strategy::Check => now,
        };
        let version = Version {
            id: *id,
            name: Some(row.name.clone()),
            amount: Some(row.amount),
            extra: row.extra.clone(),
            valid_from: time,
            valid_to: None,
            updated_at: time,
            deleted: false,
        };
        match current.get(id) {
            None => opened.push(version),
            Some(&i) => {
                let held = &history[i];
                let changed = match strategy {
                    Strategy::Timestamp => held.valid_from < Time::Source(row.updated_at),
                    Strategy::Check => {
                        held.name.as_deref() != Some(row.name.as_str())
                            || held.amount != Some(row.amount)
                    }
                };
                if changed || (deletes == Deletes::NewRecord && held.deleted) {
                    history[i].valid_to = Some(time);
                    opened.push(version);
                }
            }
        }
    }
    if deletes != Deletes::Ignore {
        for (id, &i) in &current {
            if source.contains_key(id) || (deletes == Deletes::NewRecord && history[i].deleted) {
                continue;
            }
            history[i].valid_to = Some(now);
            if deletes == Deletes::NewRecord {
                let mut record = history[i].clone();
                record.valid_from = now;
                record.updated_at = now;
                record.valid_to = None;
                record.deleted = true;
                opened.push(record);
            }
        }
    }
    history.extend(opened);
}

/// A small seeded generator (xorshift), so a failing sequence can be named and replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A sequence of source states: each key's row evolves, disappears, comes back.
fn sequence(seed: u64) -> Vec<BTreeMap<i64, Row>> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let states = 3 + rng.below(3) as usize;
    let column_at = 1 + rng.below(states as u64) as usize;
    let mut all: BTreeMap<i64, Row> = BTreeMap::new();
    let mut live: BTreeSet<i64> = BTreeSet::new();
    let mut clock = 0i64;
    let mut next_id = 1i64;
    let mut out = Vec::new();
    for state in 0..states {
        let with_extra = state >= column_at;
        let ids: Vec<i64> = all.keys().copied().collect();
        for id in ids {
            let row = all.get_mut(&id).expect("row");
            if live.contains(&id) {
                match rng.below(6) {
                    // Gone from the source.
                    0 => {
                        live.remove(&id);
                    }
                    // Changed, with a newer time.
                    1 | 2 => {
                        clock += 1 + rng.below(100) as i64;
                        row.amount += 1 + rng.below(9) as i64;
                        row.updated_at = clock;
                    }
                    // A newer time, nothing else.
                    3 => {
                        clock += 1;
                        row.updated_at = clock;
                    }
                    // A change without a newer time.
                    4 => row.name = format!("{}'", row.name),
                    _ => {}
                }
            } else if rng.below(3) == 0 {
                // Back again, changed.
                clock += 1;
                row.updated_at = clock;
                row.amount += 100;
                live.insert(id);
            }
            if with_extra && row.extra.is_none() {
                row.extra = Some(format!("x{id}"));
            }
        }
        for _ in 0..(1 + rng.below(3)) {
            clock += 1;
            let id = next_id;
            next_id += 1;
            all.insert(
                id,
                Row {
                    name: format!("n, \"{id}\""),
                    amount: rng.below(50) as i64,
                    updated_at: clock,
                    extra: with_extra.then(|| format!("x{id}")),
                },
            );
            live.insert(id);
        }
        out.push(
            live.iter()
                .map(|id| (*id, all[id].clone()))
                .collect::<BTreeMap<_, _>>(),
        );
    }
    out
}

fn csv(state: &BTreeMap<i64, Row>, with_extra: bool) -> String {
    let mut text = String::from("id,name,amount,updated_at");
    if with_extra {
        text.push_str(",extra");
    }
    text.push('\n');
    for (id, row) in state {
        let when = chrono::NaiveDate::from_ymd_opt(2020, 1, 1)
            .expect("date")
            .and_hms_opt(0, 0, 0)
            .expect("time")
            + chrono::Duration::seconds(row.updated_at);
        text.push_str(&format!(
            "{id},\"{}\",{},{}",
            row.name.replace('"', "\"\""),
            row.amount,
            when.format("%Y-%m-%d %H:%M:%S")
        ));
        if with_extra {
            text.push_str(&format!(",{}", row.extra.clone().unwrap_or_default()));
        }
        text.push('\n');
    }
    text
}

const SNAPSHOTS: &[(&str, Strategy, Deletes)] = &[
    ("ts_ignore", Strategy::Timestamp, Deletes::Ignore),
    ("ts_invalidate", Strategy::Timestamp, Deletes::Invalidate),
    ("ts_new_record", Strategy::Timestamp, Deletes::NewRecord),
    ("check_ignore", Strategy::Check, Deletes::Ignore),
    ("check_invalidate", Strategy::Check, Deletes::Invalidate),
    ("check_new_record", Strategy::Check, Deletes::NewRecord),
];

fn snapshot_files() -> Vec<(String, String)> {
    SNAPSHOTS
        .iter()
        .map(|(name, strategy, deletes)| {
            let strategy = match strategy {
                Strategy::Timestamp => "strategy='timestamp', updated_at='updated_at'",
                Strategy::Check => "strategy='check', check_cols=['name', 'amount']",
            };
            let deletes = match deletes {
                Deletes::Ignore => "ignore",
                Deletes::Invalidate => "invalidate",
                Deletes::NewRecord => "new_record",
            };
            (
                format!("snapshots/{name}.sql"),
                format!(
                    "{{% snapshot {name} %}}\n{{{{ config(unique_key='id', {strategy}, hard_deletes='{deletes}') }}}}\nselect * from {{{{ ref('source') }}}}\n{{% endsnapshot %}}\n"
                ),
            )
        })
        .collect()
}

/// A table's history as this test writes one: times of runs by their order among the table's
/// own run times.
fn normalized(versions: &[Version]) -> Vec<String> {
    let runs: BTreeSet<usize> = versions
        .iter()
        .flat_map(|v| [Some(v.valid_from), v.valid_to, Some(v.updated_at)])
        .flatten()
        .filter_map(|t| match t {
            Time::Run(r) => Some(r),
            Time::Source(_) => None,
        })
        .collect();
    let rank = |t: Time| match t {
        Time::Run(r) => format!("run{}", runs.iter().position(|x| *x == r).unwrap_or(99)),
        Time::Source(s) => format!("t{s}"),
    };
    let mut rows: Vec<String> = versions
        .iter()
        .map(|v| {
            format!(
                "{} {:?} {:?} {:?} from={} to={} at={} deleted={}",
                v.id,
                v.name,
                v.amount,
                v.extra,
                rank(v.valid_from),
                v.valid_to.map(rank).unwrap_or_else(|| "-".into()),
                rank(v.updated_at),
                v.deleted
            )
        })
        .collect();
    rows.sort();
    rows
}

/// A snapshot table read back: source times to their seconds, run times to their order.
/// `extra` says whether the source has had its added column yet (the snapshot gains it then).
fn read(w: &Warehouse, table: &str, new_record: bool, extra: bool) -> Vec<Version> {
    let deleted = if new_record {
        "coalesce(dbt_is_deleted, 'False')"
    } else {
        "'False'"
    };
    let rows = w.query(&format!(
        "select id, name, amount, {extra}, cast(dbt_valid_from as varchar), coalesce(cast(dbt_valid_to as varchar), '-'), cast(dbt_updated_at as varchar), {deleted} from {{s}}.{table}",
        extra = if extra {
            "coalesce(cast(extra as varchar), '-')"
        } else {
            "'-'"
        },
    ));
    let base = chrono::NaiveDate::from_ymd_opt(2020, 1, 1)
        .expect("date")
        .and_hms_opt(0, 0, 0)
        .expect("time");
    let mut run_times: BTreeSet<String> = BTreeSet::new();
    for r in &rows {
        for t in [&r[4], &r[5], &r[6]] {
            if t != "-" && !t.starts_with("2020") {
                run_times.insert(t.clone());
            }
        }
    }
    let time = |text: &str| -> Time {
        if text.starts_with("2020") {
            let parsed = chrono::NaiveDateTime::parse_from_str(&text[..19], "%Y-%m-%d %H:%M:%S")
                .unwrap_or_else(|e| panic!("`{text}`: {e}"));
            Time::Source((parsed - base).num_seconds())
        } else {
            Time::Run(
                run_times
                    .iter()
                    .position(|r| r == text)
                    .expect("a run time"),
            )
        }
    };
    rows.iter()
        .map(|r| Version {
            id: r[0].parse().expect("id"),
            name: (r[1] != "NULL" && !r[1].is_empty()).then(|| r[1].clone()),
            amount: r[2].parse().ok(),
            extra: (r[3] != "-").then(|| r[3].clone()),
            valid_from: time(&r[4]),
            valid_to: (r[5] != "-").then(|| time(&r[5])),
            updated_at: time(&r[6]),
            deleted: r[7] == "True",
        })
        .collect()
}

fn histories_match(kind: Kind, seeds: std::ops::Range<u64>) {
    let mut files = snapshot_files();
    files.push((
        "seeds/source.csv".into(),
        "id,name,amount,updated_at\n".into(),
    ));
    let borrowed: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    for seed in seeds {
        let Some(w) = Warehouse::new(kind, &format!("scd2_{seed}"), "name: shop\n", &borrowed)
        else {
            return;
        };
        let states = sequence(seed);
        let mut expected: Vec<Vec<Version>> = vec![Vec::new(); SNAPSHOTS.len()];
        for (run, state) in states.iter().enumerate() {
            let with_extra = state.values().any(|r| r.extra.is_some());
            w.write("seeds/source.csv", &csv(state, with_extra));
            let built = w.run(&["build"]);
            assert_eq!(built.code, 0, "seed {seed}, run {run}: {}", built.stderr);
            for (i, (name, strategy, deletes)) in SNAPSHOTS.iter().enumerate() {
                apply(&mut expected[i], state, run, *strategy, *deletes);
                let got = read(&w, name, *deletes == Deletes::NewRecord, with_extra);
                assert_eq!(
                    normalized(&got),
                    normalized(&expected[i]),
                    "seed {seed}, run {run}, snapshot `{name}`"
                );
            }
        }
    }
}

#[test]
fn snapshots_keep_the_history_dbt_describes_on_duckdb() {
    histories_match(Kind::Duckdb, 0..50);
}

#[test]
fn snapshots_keep_the_history_dbt_describes_on_postgres() {
    histories_match(Kind::Postgres, 0..50);
}
