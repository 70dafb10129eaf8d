//! Integration tests: the real `strata` binary on fixture projects.

mod common;
mod compile;
mod errors;
mod ls;
mod parse;
mod run;
