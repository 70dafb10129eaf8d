//! The `strata` binary: everything lives in the library; this only hands over the exit code.

// Parsing and compiling allocate many small strings and maps across rayon's threads; mimalloc's
// per-thread free lists save 15-25% of their CPU time. It is built without transparent huge
// pages (Cargo.toml), which otherwise added about 30 MB to the peak RSS of 10,000 models
// (BENCHMARKS.md, "Memory").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    strata::cli::main()
}
