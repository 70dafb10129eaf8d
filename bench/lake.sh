#!/usr/bin/env bash
# Builds the example project on the local Athena stand-in (tests/athena/: real Trino 476 over
# moto's Glue and S3, and the Athena API front) as `--target trino` and `--target athena`, and
# on embedded DuckDB for reference, and prints a markdown table: wall time with --threads 4
# (median of RUNS fresh builds) and 1 (one build), the share of the single-thread build spent
# waiting on the engine (`adapter_seconds` in run_results.json over the wall time), statements
# per build, and for Athena the API calls the front counted (StartQueryExecution,
# GetQueryExecution polls, GetQueryResults pages) per query, and Glue calls per build. Then it
# runs 20 trivial queries (`select 1` views) on Athena alone and prints the calls one costs.
#
# Usage: bench/lake.sh STRATA
#   STRATA  the binary to measure. Needs tests/services.sh to have started the stand-in.
#           Schemas `bench_lake_*` (and the example's `shop`) are dropped and recreated.
set -euo pipefail

readonly RUNS=3
strata=$(realpath "$1")
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# shellcheck source=../tests/athena/env
. tests/athena/env
control=http://127.0.0.1:4440/_standin
trino=http://127.0.0.1:8090

# Runs one statement on the stand-in's Trino, following nextUri; prints nothing.
trino_exec() {
    local next
    next=$(curl -s -X POST -H 'X-Trino-User: bench' --data-binary "$1" "$trino/v1/statement" |
        python3 -c 'import json,sys; print(json.load(sys.stdin).get("nextUri",""))')
    while [[ -n $next ]]; do
        next=$(curl -s -H 'X-Trino-User: bench' "$next" |
            python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("nextUri",""))')
    done
}

# Drops a Glue database with everything in it (Iceberg tables through the iceberg catalog).
drop_schema() {
    local schema=$1 tables
    tables=$(curl -s -X POST -H 'X-Amz-Target: AWSGlue.GetTables' -H 'Content-Type: application/x-amz-json-1.1' \
        --data "{\"DatabaseName\": \"$schema\"}" "http://127.0.0.1:4440/" |
        python3 -c 'import json,sys; d=json.load(sys.stdin); [print(t["Name"], (t.get("Parameters") or {}).get("table_type","hive").lower(), t.get("TableType","")) for t in d.get("TableList",[])]' 2>/dev/null || true)
    while read -r name kind type; do
        [[ -z $name ]] && continue
        if [[ $type == VIRTUAL_VIEW ]]; then
            trino_exec "drop view if exists awsdatacatalog.\"$schema\".\"$name\""
        elif [[ $kind == iceberg ]]; then
            trino_exec "drop table if exists iceberg.\"$schema\".\"$name\""
        else
            trino_exec "drop table if exists awsdatacatalog.\"$schema\".\"$name\""
        fi
    done <<<"$tables"
    trino_exec "drop schema if exists awsdatacatalog.\"$schema\""
}

# One fresh build of a copy of the example: prints "wall adapter statements nodes athena glue queries".
build_once() {
    local target=$1 threads=$2 schema=$3
    if [[ $target != duckdb ]]; then
        drop_schema "$schema"
        drop_schema "${schema}_strata"
        drop_schema shop
    fi
    rm -rf "$scratch/example"
    mkdir -p "$scratch/example/tests"
    cp -r "$root/project.yml" "$root/models" "$root/seeds" "$root/macros" "$root/landing" "$scratch/example/"
    cp -r "$root/tests/strata" "$scratch/example/tests/"
    curl -s -X DELETE "$control/events" >/dev/null
    local args=(build --threads "$threads" -q)
    [[ $target != duckdb ]] && args+=(--target "$target")
    local started ended
    started=$(date +%s.%N)
    (cd "$scratch/example" && STRATA_TRINO_SCHEMA=$schema STRATA_ATHENA_SCHEMA=$schema \
        "$strata" "${args[@]}" >/dev/null 2>"$scratch/err") || { cat "$scratch/err" >&2; exit 1; }
    ended=$(date +%s.%N)
    python3 - "$scratch/example/target/strata/run_results.json" "$started" "$ended" "$(curl -s "$control/calls")" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))
wall = float(sys.argv[3]) - float(sys.argv[2])
statements = sum((r.get("adapter_response") or {}).get("statements", 0) for r in results["results"])
calls = json.loads(sys.argv[4])
athena = sum(n for op, n in calls.items() if not op.startswith("AWSGlue."))
glue = sum(n for op, n in calls.items() if op.startswith("AWSGlue."))
queries = calls.get("StartQueryExecution", 0)
print(f"{wall:.3f} {results['adapter_seconds']:.3f} {statements} {len(results['results'])} {athena} {glue} {queries}")
PY
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "| target | wall, 4 threads | wall, 1 thread | waiting on the engine (1 thread) | statements | Athena calls per query | Glue calls per build |"
echo "|---|---|---|---|---|---|---|"
for target in duckdb trino athena; do
    four=()
    for _ in $(seq 1 "$RUNS"); do
        four+=("$(build_once "$target" 4 "bench_lake_$target")")
    done
    wall4=$(printf '%s\n' "${four[@]}" | cut -d' ' -f1 | median)
    line=$(build_once "$target" 1 "bench_lake_$target")
    read -r wall1 adapter statements _ athena glue queries <<<"$line"
    share=$(python3 -c "print(f'{100 * $adapter / $wall1:.0f} %')")
    per_query="–"
    glue_calls="–"
    if [[ $target == athena ]]; then
        per_query=$(python3 -c "print(f'{$athena / max($queries, 1):.2f} ({$athena} calls, {$queries} queries)')")
        glue_calls=$glue
    fi
    echo "| \`$target\` | ${wall4} s | ${wall1} s | $share | $statements | $per_query | $glue_calls |"
done

# A fast query's cost: 20 views of `select 1`, one thread, on Athena.
mkdir -p "$scratch/fast/models"
printf 'name: fast\nprofile: fast\n' >"$scratch/fast/project.yml"
cat >"$scratch/fast/profiles.yml" <<'YML'
fast:
  target: athena
  outputs:
    athena:
      type: athena
      region_name: us-east-1
      schema: bench_lake_fast
      work_group: primary
      s3_staging_dir: s3://strata-athena/staging/bench/
      threads: 1
YML
for i in $(seq 1 20); do echo "select $i as n" >"$scratch/fast/models/v$i.sql"; done
drop_schema bench_lake_fast
(cd "$scratch/fast" && "$strata" run -q >/dev/null 2>"$scratch/err") || { cat "$scratch/err" >&2; exit 1; }
curl -s -X DELETE "$control/events" >/dev/null
for i in $(seq 1 20); do echo "select $i as n -- again" >"$scratch/fast/models/v$i.sql"; done
(cd "$scratch/fast" && "$strata" run -q >/dev/null 2>"$scratch/err") || { cat "$scratch/err" >&2; exit 1; }
curl -s "$control/calls" | python3 -c '
import json, sys
calls = json.load(sys.stdin)
count = lambda name: calls.get(name, 0)
queries = count("StartQueryExecution")
polls = count("GetQueryExecution")
pages = count("GetQueryResults")
print()
print(f"Fast queries (20 views of `select n` replaced, one thread): {queries} queries, {polls} GetQueryExecution polls, {pages} GetQueryResults pages: {(queries + polls + pages) / queries:.2f} Athena calls per query.")
'
drop_schema bench_lake_fast
for target in trino athena; do
    drop_schema "bench_lake_$target"
    drop_schema "bench_lake_${target}_strata"
done
