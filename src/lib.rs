//! strata: a declarative SQL-model build tool — dbt's project layout and Jinja API, one fast
//! binary.
//!
//! Data flows one way through the rooms: [`project`] loads files, [`template`] renders Jinja,
//! [`manifest`] runs the parse phase, [`changes`] compares it with a previous run's artifacts,
//! [`graph`] builds the DAG and selects, [`compile`] renders
//! selected nodes to SQL (checked by [`sql`]) reading landing files as [`landing`] plans,
//! [`run`] prepares and schedules the nodes, each of which [`materialize`] turns into a typed
//! [`plan`] that the warehouse's [`adapter`] lowers and runs, reading the [`catalog`] and
//! recording strata's own [`state`]; [`artifacts`] writes what tools read. The [`cli`] resolves
//! flags into settings and prints; [`output`] owns the terminal.

pub mod adapter;
pub mod alerts;
pub mod artifacts;
pub mod catalog;
pub mod changes;
pub mod cli;
pub mod compile;
pub mod data_test;
pub mod deps;
pub mod diagnostic;
pub mod docs;
pub mod freshness;
pub mod graph;
pub mod landing;
pub mod lineage;
pub mod local;
pub mod manifest;
pub mod materialize;
pub mod output;
pub mod plan;
pub mod project;
pub mod relation;
pub mod run;
pub mod runlog;
pub mod sql;
pub mod state;
pub mod template;
pub mod util;
