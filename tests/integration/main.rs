//! Integration tests: the real `strata` binary on fixture projects.

mod bounds;
mod commands;
mod common;
mod compile;
mod cross_db;
mod data_tests;
mod errors;
mod example;
mod introspection;
mod lake;
mod landing;
mod library;
mod ls;
mod materializations;
mod packages;
mod parse;
mod plans;
mod postgres;
mod pr_checks;
mod redshift;
mod run;
mod state;
mod strategies;
mod swap;
mod unit_tests;
mod warehouse;
