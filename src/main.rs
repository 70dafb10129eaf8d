//! The `strata` binary: everything lives in the library; this only hands over the exit code.

// Parsing and compiling allocate many small strings and maps across rayon's threads; mimalloc's
// per-thread free lists cut that cost against the system allocator (figures in BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    strata::cli::main()
}
