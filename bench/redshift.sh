#!/usr/bin/env bash
# Builds the example project on the local Redshift stand-in (tests/redshift/) by each
# transport, and on the same PostgreSQL directly for reference, and prints a markdown table:
# wall time with --threads 1 and 4 (medians of RUNS fresh builds), the share of the
# single-thread build spent waiting on the warehouse (`adapter_seconds` in run_results.json
# over the wall time), statements per build (`adapter_response.statements`), and for the Data
# API the calls the stand-in counted (ExecuteStatement, BatchExecuteStatement,
# DescribeStatement polls, GetStatementResult pages) per statement and per node.
#
# Usage: bench/redshift.sh STRATA
#   STRATA  the binary to measure. Needs tests/services.sh to have started PostgreSQL and the
#           stand-in. Databases `strata_bench_rs_*` are recreated.
set -euo pipefail

readonly RUNS=3
strata=$(realpath "$1")
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# shellcheck source=../tests/redshift/env
. tests/redshift/env
control=http://127.0.0.1:4439/_standin

psql_admin() { PGOPTIONS="-c client_min_messages=warning" psql -h 127.0.0.1 -U postgres -d postgres -X -q -At -c "$1" >/dev/null; }

# One fresh build of a copy of the example: prints "wall adapter statements nodes calls".
build_once() {
    local target=$1 threads=$2 database=$3
    psql_admin "drop database if exists $database with (force)"
    psql_admin "create database $database"
    rm -rf "$scratch/example"
    mkdir -p "$scratch/example"
    cp -r "$root/project.yml" "$root/models" "$root/seeds" "$root/macros" "$root/landing" "$scratch/example/"
    mkdir -p "$scratch/example/tests"
    cp -r "$root/tests/strata" "$scratch/example/tests/"
    curl -s -X DELETE "$control/events" >/dev/null
    local started ended
    started=$(date +%s.%N)
    (cd "$scratch/example" && STRATA_PG_DATABASE=$database STRATA_PG_SSLMODE=disable \
        STRATA_REDSHIFT_DATABASE=$database STRATA_REDSHIFT_SSLMODE=disable \
        "$strata" build --target "$target" --threads "$threads" -q >/dev/null 2>"$scratch/err") ||
        { cat "$scratch/err" >&2; exit 1; }
    ended=$(date +%s.%N)
    local calls
    calls=$(curl -s "$control/calls")
    python3 - "$scratch/example/target/strata/run_results.json" "$started" "$ended" "$calls" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))
wall = float(sys.argv[3]) - float(sys.argv[2])
statements = sum((r.get("adapter_response") or {}).get("statements", 0) for r in results["results"])
calls = sum(json.loads(sys.argv[4]).values())
print(f"{wall:.3f} {results['adapter_seconds']:.3f} {statements} {len(results['results'])} {calls}")
PY
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "| target | transport | wall, 1 thread | wall, 4 threads | waiting on the warehouse (1 thread) | statements | API calls per statement | API calls per node |"
echo "|---|---|---|---|---|---|---|---|"
for target in pg redshift redshift_data; do
    one=()
    four=()
    line=""
    for _ in $(seq 1 "$RUNS"); do
        line=$(build_once "$target" 1 "strata_bench_rs_$target")
        one+=("$line")
        four+=("$(build_once "$target" 4 "strata_bench_rs_$target")")
    done
    wall1=$(printf '%s\n' "${one[@]}" | cut -d' ' -f1 | median)
    wall4=$(printf '%s\n' "${four[@]}" | cut -d' ' -f1 | median)
    read -r _ adapter statements nodes calls <<<"$line"
    wall_last=$(cut -d' ' -f1 <<<"$line")
    share=$(python3 -c "print(f'{100 * $adapter / $wall_last:.0f} %')")
    case $target in
        pg) transport="PostgreSQL directly (reference)"; per_statement="–"; per_node="–" ;;
        redshift) transport="wire protocol, through the stand-in's front"; per_statement="–"; per_node="–" ;;
        *)
            transport="Data API"
            per_statement=$(python3 -c "print(f'{$calls / $statements:.2f}')")
            per_node=$(python3 -c "print(f'{$calls / $nodes:.2f}')")
            ;;
    esac
    echo "| \`--target $target\` | $transport | ${wall1} s | ${wall4} s | $share | $statements | $per_statement | $per_node |"
done
for target in pg redshift redshift_data; do
    psql_admin "drop database if exists strata_bench_rs_$target with (force)"
done
