//! strata: a declarative SQL-model build tool — dbt's project layout and Jinja API, one fast
//! binary.
//!
//! Data flows one way through the rooms: [`project`] loads files, [`template`] renders Jinja,
//! [`manifest`] runs the parse phase, [`graph`] builds the DAG and selects, [`compile`] renders
//! selected nodes to SQL (checked by [`sql`]) reading landing files as [`landing`] plans, and
//! [`artifacts`] writes what tools read. The
//! [`cli`] resolves flags into settings and drives the rooms; [`output`] owns the terminal.

pub mod adapter;
pub mod artifacts;
pub mod cli;
pub mod compile;
pub mod data_test;
pub mod diagnostic;
pub mod graph;
pub mod landing;
pub mod manifest;
pub mod materialize;
pub mod output;
pub mod project;
pub mod relation;
pub mod run;
pub mod sql;
pub mod template;
pub mod util;
