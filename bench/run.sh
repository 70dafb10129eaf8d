#!/usr/bin/env bash
# Times strata's execution on embedded DuckDB and writes the figures into BENCHMARKS.md:
#   - `strata build --threads 1` of generated projects (default 100 and 1,000 models), with
#     strata's own overhead per node: wall time minus the time spent inside DuckDB calls
#     (`adapter_seconds` in run_results.json), divided by the number of nodes run; and, in the
#     same series (runs interleaved), the raw-DuckDB arm: the same compiled SQL of every model
#     and test run as plain `create or replace` statements and queries on one connection in
#     dependency order, with no tool around it (`examples/raw_duckdb.rs`), and the ratio;
#   - `strata seed` of a 1,000,000-row CSV;
#   - `strata test` of 20 column tests on a 10,000,000-row table, one query per test and
#     sharing one scan (--batch-tests);
#   - with --postgres, the same seed by COPY, the 1,000-model build with --threads 1 and 4,
#     and the 20 tests both ways on the local PostgreSQL server (database `strata_bench`,
#     recreated).
# Every run starts from an empty target folder; figures are medians of RUNS runs.
#
# Usage: bench/run.sh [--write] [--no-build] [SIZE ...]
set -euo pipefail

readonly RUNS=3
readonly START_MARKER='<!-- bench:run:start -->'
readonly END_MARKER='<!-- bench:run:end -->'

cd "$(dirname "${BASH_SOURCE[0]}")/.."
target_dir=${CARGO_TARGET_DIR:-target}
strata="$(realpath -m "$target_dir/release/strata")"
gen_project="$target_dir/release/examples/gen_project"
raw_duckdb="$target_dir/release/examples/raw_duckdb"

write=false
build=true
postgres=false
sizes=()
for arg in "$@"; do
    case "$arg" in
        --write) write=true ;;
        --no-build) build=false ;;
        --postgres) postgres=true ;;
        -h | --help)
            sed -n '2,12p' "$0"
            exit 0
            ;;
        *[!0-9]* | '')
            echo "error: unexpected argument \`$arg\`" >&2
            exit 2
            ;;
        *) sizes+=("$arg") ;;
    esac
done
((${#sizes[@]} > 0)) || sizes=(100 1000)
[[ -x /usr/bin/time ]] || {
    echo 'error: GNU time is needed at /usr/bin/time' >&2
    exit 1
}
if $build; then
    cargo build --release --bin strata --example gen_project --example raw_duckdb >&2
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

median() { sort -n | sed -n "$(((RUNS + 1) / 2))p"; }

# time_strata DIR ARGS...: runs strata in DIR from an empty target folder; appends
# "wall adapter_seconds nodes" to $scratch/samples.
time_strata() {
    local dir=$1
    shift
    # Moved aside, deleted when the script ends: creating files right after deleting many is
    # slow on ext4 (see bench/bench.sh), which would time the clean-up, not strata.
    if [[ -d "$dir/target" ]]; then
        mv "$dir/target" "$scratch/old-target-$RANDOM$RANDOM"
    fi
    if ! (cd "$dir" && /usr/bin/time -f '%e' -o "$scratch/time" "$strata" "$@" >/dev/null 2>"$scratch/stderr"); then
        # A failing data test is a result, not a benchmark failure; anything else stops us.
        if ! grep -q 'finished' "$scratch/stderr"; then
            cat "$scratch/stderr" >&2
            exit 1
        fi
    fi
    python3 - "$dir" "$(tail -n 1 "$scratch/time")" >>"$scratch/samples" <<'PY'
import json, sys
dir, wall = sys.argv[1], float(sys.argv[2])
results = json.load(open(f"{dir}/target/run_results.json"))
print(wall, results.get("adapter_seconds", 0.0), len(results["results"]))
PY
}

# time_raw DIR: the raw-DuckDB arm over the manifest strata's last run in DIR wrote; appends
# the wall time to $scratch/raw_samples.
time_raw() {
    local dir=$1
    /usr/bin/time -f '%e' -o "$scratch/time" "$raw_duckdb" "$dir" "$dir/target/manifest.json" "$scratch/raw" 2>"$scratch/raw_stderr" || {
        cat "$scratch/raw_stderr" >&2
        exit 1
    }
    tail -n 1 "$scratch/time" >>"$scratch/raw_samples"
}

rows=()
for size in "${sizes[@]}"; do
    dir="bench-out/run-$size"
    "$gen_project" --models "$size" --out "$dir" --force >&2
    : >"$scratch/samples"
    time_strata "$dir" build --threads 1 # warm-up
    : >"$scratch/samples"
    : >"$scratch/raw_samples"
    for ((i = 0; i < RUNS; i++)); do
        time_strata "$dir" build --threads 1
        time_raw "$dir"
    done
    raw_wall=$(median <"$scratch/raw_samples")
    wall=$(cut -d ' ' -f 1 "$scratch/samples" | median)
    line=$(grep "^$wall " "$scratch/samples" | head -n 1)
    read -r _ sql nodes <<<"$line"
    overhead=$(python3 -c "print(f'{($wall - $sql) / $nodes * 1000:.2f}')")
    sql=$(printf '%.2f' "$sql")
    rows+=("| \`strata build --threads 1\`, $size models ($nodes nodes incl. seeds and tests) | $wall s | $sql s | $overhead ms |")
    ratio=$(python3 -c "print(f'{$wall / $raw_wall:.2f}')")
    rows+=("| raw DuckDB arm, the same compiled SQL, $size models: strata is ×$ratio of it | $raw_wall s | | |")
    echo "bench: build $size: wall $wall s, in DuckDB $sql s, overhead $overhead ms/node; raw arm $raw_wall s (strata ×$ratio)" >&2
done

# A 1,000,000-row seed.
dir=bench-out/seed
rm -rf "$dir" && mkdir -p "$dir/seeds"
printf 'name: seed_bench\n' >"$dir/project.yml"
python3 - "$dir/seeds/big_seed.csv" <<'PY'
import random, sys
random.seed(7)
with open(sys.argv[1], "w") as f:
    f.write("id,customer,amount,ordered_at,note\n")
    for i in range(1_000_000):
        f.write(f'{i},c{random.randrange(50000)},{random.randrange(100000) / 100},2024-{1 + i % 12:02d}-{1 + i % 28:02d},"note, {i % 97}"\n')
PY
: >"$scratch/samples"
for ((i = 0; i < RUNS; i++)); do time_strata "$dir" seed; done
seed_wall=$(cut -d ' ' -f 1 "$scratch/samples" | median)
rows+=("| \`strata seed\`, 1,000,000 rows (5 columns, 38 MB CSV) | $seed_wall s | | |")
echo "bench: seed 1M rows: $seed_wall s" >&2

# 20 column tests (not_null and accepted_values on 10 columns, all passing) on a
# 10,000,000-row table, one query per test and one shared scan.
tests_project() {
    # $1: project directory
    rm -rf "$1" && mkdir -p "$1/models"
    printf 'name: test_bench\nmodels:\n  test_bench:\n    +materialized: table\n' >"$1/project.yml"
    {
        echo 'select i % 5 as c0'
        for c in $(seq 1 9); do echo "  , (i + $c) % 5 as c$c"; done
        echo 'from generate_series(0, 9999999) as t(i)'
    } >"$1/models/wide.sql"
    {
        echo 'version: 2'
        echo 'models:'
        echo '  - name: wide'
        echo '    columns:'
        for c in $(seq 0 9); do
            echo "      - name: c$c"
            echo '        data_tests:'
            echo '          - not_null'
            echo '          - accepted_values: {values: [0, 1, 2, 3, 4], quote: false}'
        done
    } >"$1/models/schema.yml"
}
# time_tests DIR LABEL FLAGS...: median wall time of `strata test FLAGS` (the table is kept).
time_tests() {
    local dir=$1 label=$2
    shift 2
    : >"$scratch/samples"
    for ((i = 0; i < RUNS; i++)); do
        (cd "$dir" && /usr/bin/time -f '%e' -o "$scratch/time" "$strata" test "$@" >/dev/null 2>"$scratch/stderr") || true
        grep -q 'PASS=20 WARN=0 ERROR=0' "$scratch/stderr" || {
            cat "$scratch/stderr" >&2
            exit 1
        }
        tail -n 1 "$scratch/time" >>"$scratch/samples"
    done
    value=$(median <"$scratch/samples")
    rows+=("| $label | $value s | | |")
    echo "bench: $label: $value s" >&2
}
dir=bench-out/tests
tests_project "$dir"
(cd "$dir" && "$strata" run >/dev/null 2>&1)
time_tests "$dir" '`strata test`, 20 column tests on 10,000,000 rows, one query each (DuckDB default)'
time_tests "$dir" '`strata test --batch-tests`, the same 20 tests sharing one scan' --batch-tests

if $postgres; then
    psql_bench() { psql -h 127.0.0.1 -U postgres -X -q -v ON_ERROR_STOP=1 "$@"; }
    pg_profile() {
        # $1: project directory, $2: profile name (the project's `name:`)
        cat >"$1/profiles.yml" <<YAML
$2:
  target: pg
  outputs:
    pg:
      type: postgres
      host: 127.0.0.1
      user: postgres
      dbname: strata_bench
      schema: bench
      sslmode: disable
YAML
        grep -q '^profile:' "$1/project.yml" || printf 'profile: %s\n' "$2" >>"$1/project.yml"
    }
    reset_pg() {
        psql_bench -d postgres -c 'drop database if exists strata_bench with (force)'
        psql_bench -d postgres -c 'create database strata_bench'
    }
    pg_profile bench-out/seed seed_bench
    : >"$scratch/samples"
    for ((i = 0; i < RUNS; i++)); do
        reset_pg
        time_strata bench-out/seed seed
    done
    value=$(cut -d ' ' -f 1 "$scratch/samples" | median)
    rm -f bench-out/seed/profiles.yml
    sed -i '/^profile: seed_bench$/d' bench-out/seed/project.yml
    rows+=("| PostgreSQL: \`strata seed\`, 1,000,000 rows by COPY | $value s | | |")
    echo "bench: postgres seed 1M rows: $value s" >&2
    dir=bench-out/run-1000
    [[ -d $dir ]] || "$gen_project" --models 1000 --out "$dir" --force >&2
    pg_profile "$dir" gen
    for threads in 1 4; do
        : >"$scratch/samples"
        for ((i = 0; i < RUNS; i++)); do
            reset_pg
            time_strata "$dir" build --threads "$threads"
        done
        wall=$(cut -d ' ' -f 1 "$scratch/samples" | median)
        line=$(grep "^$wall " "$scratch/samples" | head -n 1)
        read -r _ sql nodes <<<"$line"
        sql=$(printf '%.2f' "$sql")
        rows+=("| PostgreSQL: \`strata build --threads $threads\`, 1,000 models ($nodes nodes) | $wall s | $sql s (summed over connections) | |")
        echo "bench: postgres build 1000 threads $threads: $wall s" >&2
    done
    rm -f "$dir/profiles.yml"
    sed -i '/^profile: gen$/d' "$dir/project.yml"

    dir=bench-out/tests-pg
    tests_project "$dir"
    pg_profile "$dir" test_bench
    reset_pg
    (cd "$dir" && "$strata" run >/dev/null 2>&1)
    time_tests "$dir" 'PostgreSQL: `strata test`, the same 20 tests sharing one scan (PostgreSQL default)'
    time_tests "$dir" 'PostgreSQL: `strata test --no-batch-tests`, one query each' --no-batch-tests
fi

table="$scratch/table.md"
{
    echo '| work | wall | in the warehouse | strata overhead per node |'
    echo '|---|---|---|---|'
    printf '%s\n' "${rows[@]}"
} >"$table"
cat "$table"

if $write; then
    section="$scratch/section.md"
    {
        echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores at commit \`$(git describe --always --dirty)\` by \`bench/run.sh --write\`:"
        echo "median of $RUNS runs, release build, each from an empty target folder (the test runs reuse the built table)."
        echo
        cat "$table"
    } >"$section"
    if ! grep -qxF "$START_MARKER" BENCHMARKS.md; then
        printf '\n## Execution on DuckDB and PostgreSQL\n\n%s\n%s\n' "$START_MARKER" "$END_MARKER" >>BENCHMARKS.md
    fi
    awk -v start="$START_MARKER" -v end="$END_MARKER" -v section="$section" '
        $0 == start { print; while ((getline line < section) > 0) print line; skip = 1; next }
        $0 == end { skip = 0 }
        !skip { print }
    ' BENCHMARKS.md >"$scratch/b.md" && cp "$scratch/b.md" BENCHMARKS.md
    echo "bench: updated BENCHMARKS.md" >&2
fi
