//! What a killed run leaves behind, found and repaired by the next one before it builds: a
//! table moved to its backup with no live table is put back, a backup beside a live table (the
//! swap finished, the drop did not) is dropped, and relations built aside and never swapped in
//! are dropped. Older versions' fixed staging names (`<name>__strata_tmp`, `__strata_new`) are
//! cleared too.
//!
//! Plans only, from a schema's listing; the run executes them.

use crate::adapter::{Flavour, RelationInfo, RelationKind};
use crate::plan::{aside, Block, Plan, Role, Step};
use crate::relation::RelationName;

/// One repair: what it does, for the run to report, and its plan.
#[derive(Debug, Clone)]
pub struct Repair {
    pub message: String,
    pub plan: Plan,
}

fn one(step: Step) -> Plan {
    Plan {
        blocks: vec![Block::new(Role::Publish, false, vec![step])],
        ..Plan::default()
    }
}

/// The live name an aside name belongs to: the name it carries, or one of `known` whose
/// shortened aside name it is.
fn live_of(
    flavour: &dyn Flavour,
    relation: &RelationName,
    parsed: &aside::Aside<'_>,
    known: &[RelationName],
) -> RelationName {
    let limit = flavour.limits().identifier_length;
    known
        .iter()
        .find(|live| {
            live.schema == relation.schema
                && aside::name(live, parsed.what, parsed.run_id, limit).identifier
                    == relation.identifier
        })
        .cloned()
        .unwrap_or_else(|| {
            RelationName::new(
                relation.database.clone(),
                relation.schema.clone(),
                parsed.live,
            )
        })
}

/// The repairs one schema's relations need; `run_id` is this run's (its own asides are not
/// leftovers), `known` the live relations the project builds.
pub fn repairs(
    flavour: &dyn Flavour,
    relations: &[RelationInfo],
    run_id: &str,
    known: &[RelationName],
) -> Vec<Repair> {
    let exists = |name: &RelationName| {
        relations
            .iter()
            .any(|r| r.name.identifier.eq_ignore_ascii_case(&name.identifier))
    };
    let drop = |info: &RelationInfo| Step::Drop {
        relation: info.name.clone(),
        kind: info.kind,
        cascade: false,
    };
    let mut out = Vec::new();
    for info in relations {
        let identifier = &info.name.identifier;
        if let Some(parsed) = aside::parse(identifier) {
            if parsed.run_id == run_id {
                continue;
            }
            let live = live_of(flavour, &info.name, &parsed, known);
            if parsed.what == aside::BACKUP && info.kind == RelationKind::Table && !exists(&live) {
                out.push(Repair {
                    message: format!(
                        "restored `{}` from `{identifier}`, where a killed run left it",
                        live.dotted()
                    ),
                    plan: one(Step::Rename {
                        from: info.name.clone(),
                        to: live.identifier.clone(),
                        kind: RelationKind::Table,
                    }),
                });
            } else {
                out.push(Repair {
                    message: format!("dropped `{}`, left by an earlier run", info.name.dotted()),
                    plan: one(drop(info)),
                });
            }
        } else if identifier.ends_with("__strata_tmp") || identifier.ends_with("__strata_new") {
            out.push(Repair {
                message: format!("dropped `{}`, left by an earlier run", info.name.dotted()),
                plan: one(drop(info)),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str) -> RelationInfo {
        RelationInfo {
            name: RelationName::new(None, "s", name),
            kind: RelationKind::Table,
            columns: Vec::new(),
        }
    }

    #[test]
    fn a_lone_backup_is_restored_and_leftovers_are_dropped() {
        let relations = vec![
            table("orders__strata_backup_aaaa1111"),
            table("orders__strata_tmp_aaaa1111"),
            table("items"),
            table("items__strata_backup_bbbb2222"),
            table("items__strata_new"),
            table("fresh__strata_tmp_cccc3333"),
        ];
        let found = repairs(
            crate::adapter::embedded_flavour().as_ref(),
            &relations,
            "cccc3333",
            &[],
        );
        let messages: Vec<&str> = found.iter().map(|r| r.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "restored `s.orders` from `orders__strata_backup_aaaa1111`, where a killed run left it",
                "dropped `s.orders__strata_tmp_aaaa1111`, left by an earlier run",
                "dropped `s.items__strata_backup_bbbb2222`, left by an earlier run",
                "dropped `s.items__strata_new`, left by an earlier run",
            ]
        );
    }
}
