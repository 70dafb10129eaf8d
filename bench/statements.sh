#!/usr/bin/env bash
# Counts what each materialization and strategy costs the warehouse: statements (queries
# included) and transactions per node, on embedded DuckDB and on the local PostgreSQL server,
# for a first build and for the incremental build after one new batch. On Athena and the
# Redshift Data API each statement is a polled round trip of a second or more, so these counts
# are the figure that matters there.
#
# Usage: bench/statements.sh STRATA [BEFORE]
#   STRATA  the binary to measure: its counts come from run_results.json
#           (`adapter_response.statements` / `.transactions`);
#   BEFORE  optionally a build of an earlier commit patched to print `STRATA_COUNT <node>
#           <statements> <transactions>` per node on stderr (the patch is not committed; see
#           BENCHMARKS.md), measured the same way for the table's "before" columns.
# Prints a markdown table. Needs PostgreSQL at 127.0.0.1:5432 (tests/services.sh) for its
# PostgreSQL columns; database `strata_statements` is recreated.
set -euo pipefail

strata=$(realpath "$1")
before=${2:+$(realpath "$2")}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

write_project() {
    local dir=$1
    mkdir -p "$dir/models" "$dir/seeds" "$dir/landing/orders"
    printf 'name: shop\n' >"$dir/project.yml"
    printf 'id,d,v\n1,1,10\n2,2,20\n3,3,30\n' >"$dir/seeds/src.csv"
    printf 'id,_op,_commit_ts\n1,I,2024-01-01 00:00:00\n2,I,2024-01-01 00:00:00\n' >"$dir/seeds/changes.csv"
    printf 'id,amount\n1,10\n' >"$dir/landing/orders/LOAD00000001.csv"
    local select="select id, d, v from {{ ref('src') }}"
    printf '%s\n' "{{ config(materialized='view') }}" "$select" >"$dir/models/a_view.sql"
    printf '%s\n' "{{ config(materialized='table') }}" "$select" >"$dir/models/a_table.sql"
    local later="{% if is_incremental() %} where id > (select max(id) from {{ this }}){% endif %}"
    printf '%s\n' "{{ config(materialized='incremental', incremental_strategy='append') }}" "$select $later" >"$dir/models/i_append.sql"
    printf '%s\n' "{{ config(materialized='incremental', incremental_strategy='merge', unique_key='id') }}" "$select $later" >"$dir/models/i_merge.sql"
    printf '%s\n' "{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='id') }}" "$select $later" >"$dir/models/i_delete_insert.sql"
    printf '%s\n' "{{ config(materialized='incremental', incremental_strategy='insert_overwrite', partition_by='d') }}" "$select $later" >"$dir/models/i_insert_overwrite.sql"
    printf '%s\n' "{{ config(materialized='incremental', incremental_strategy='cdc', unique_key='id') }}" \
        "select id, _op, cast(_commit_ts as timestamp) as _commit_ts from {{ ref('changes') }}" >"$dir/models/i_cdc.sql"
    printf '%s\n' "{{ config(materialized='incremental', bookmark='files') }}" \
        "select id, amount, _source_file from {{ source('shop', 'orders') }}" >"$dir/models/i_bookmarked.sql"
    cat >"$dir/models/schema.yml" <<'YAML'
version: 2
sources:
  - name: shop
    tables:
      - name: orders
        external: {location: 'landing/orders/*.csv', format: csv}
models:
  - name: a_table
    columns:
      - name: id
        data_tests: [unique]
YAML
}

next_batch() {
    local dir=$1
    printf '4,4,40\n' >>"$dir/seeds/src.csv"
    printf '1,U,2024-01-02 00:00:00\n2,D,2024-01-02 00:00:00\n' >>"$dir/seeds/changes.csv"
    printf 'id,amount\n2,20\n' >"$dir/landing/orders/20240702-000000000.csv"
}

pg_profile() {
    cat >"$1/profiles.yml" <<'YAML'
shop:
  target: pg
  outputs:
    pg:
      type: postgres
      host: 127.0.0.1
      user: postgres
      dbname: strata_statements
      schema: bench
      threads: 1
      sslmode: disable
YAML
    printf 'profile: shop\n' >>"$1/project.yml"
}

# counts BINARY DIR ROUND: "node statements transactions" lines for one build.
counts() {
    local binary=$1 dir=$2 round=$3
    (cd "$dir" && "$binary" build --threads 1 >/dev/null 2>"$scratch/stderr") || {
        cat "$scratch/stderr" >&2
        exit 1
    }
    if grep -q '^STRATA_COUNT ' "$scratch/stderr"; then
        grep '^STRATA_COUNT ' "$scratch/stderr" | awk -v r="$round" '{print r, $2, $3, $4}'
    else
        python3 - "$dir" "$round" <<'PY'
import json, glob, sys
dir, round_ = sys.argv[1], sys.argv[2]
path = glob.glob(f"{dir}/target/run_results.json")[0]
for r in json.load(open(path))["results"]:
    a = r.get("adapter_response", {})
    print(round_, r["unique_id"], a.get("statements", "?"), a.get("transactions", "?"))
PY
    fi
}

# measure LABEL BINARY WAREHOUSE: both rounds on a fresh project.
measure() {
    local label=$1 binary=$2 warehouse=$3
    local dir="$scratch/$label-$warehouse"
    rm -rf "$dir"
    write_project "$dir"
    if [[ $warehouse == postgres ]]; then
        psql -h 127.0.0.1 -U postgres -X -q -d postgres -c 'drop database if exists strata_statements with (force)' -c 'create database strata_statements'
        pg_profile "$dir"
    fi
    counts "$binary" "$dir" first | sed "s/^/$label $warehouse /"
    next_batch "$dir"
    counts "$binary" "$dir" next | sed "s/^/$label $warehouse /"
}

: >"$scratch/all"
for warehouse in duckdb postgres; do
    measure after "$strata" "$warehouse" >>"$scratch/all"
    if [[ -n $before ]]; then
        measure before "$before" "$warehouse" >>"$scratch/all"
    fi
done

python3 - "$scratch/all" <<'PY'
import sys
from collections import defaultdict
rows = defaultdict(dict)
for line in open(sys.argv[1]):
    label, warehouse, round_, node, statements, transactions = line.split()
    name = node.split(".", 2)[-1] if not node.startswith("test.") else "test " + node.split(".")[2]
    rows[name][(warehouse, round_, label)] = f"{statements}/{transactions}"
columns = [(w, r) for w in ("duckdb", "postgres") for r in ("first", "next")]
labels = ("before", "after")
header = "| node | " + " | ".join(f"{w} {r} build" for w, r in columns) + " |"
print(header)
print("|---" * (len(columns) + 1) + "|")
for name in sorted(rows):
    cells = []
    for w, r in columns:
        values = [rows[name].get((w, r, l)) for l in labels]
        if values[0] is None:
            cells.append(values[1] or "")
        else:
            cells.append(f"{values[0]} → {values[1]}")
    print(f"| `{name}` | " + " | ".join(cells) + " |")
PY
