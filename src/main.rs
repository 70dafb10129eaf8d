//! The `strata` binary: everything lives in the library; this only hands over the exit code.

// Parsing and compiling allocate many small strings and maps across rayon's threads; mimalloc's
// per-thread free lists save 15-25% of their CPU time, at 60-75 MiB more peak memory on 10,000
// models (BENCHMARKS.md, "Re-measured 2026-12-01").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    strata::cli::main()
}
