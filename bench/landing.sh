#!/usr/bin/env bash
# Times the example project's daily incremental run against a full refresh, on DuckDB, over a
# generated landing zone (default 5,000,000 orders in the full load, then 3 CDC days):
#   1. `strata run --full-refresh` over every file (the full refresh);
#   2. the next day lands (`gen_landing --next-day`, about 1% of the rows);
#   3. `strata run`: the incremental run, which reads the new files only;
#   4. `strata run` again: no new files;
#   5. `strata build` after one more day: the incremental run with every data test.
# Each figure is the median of RUNS rounds; every round starts from the same landing zone and
# an empty target folder. Seeds are loaded before the timing. The new day's share of all
# landing rows is counted with the bundled DuckDB (strata show --inline).
#
# Usage: bench/landing.sh [--write] [--no-build] [--orders N]
set -euo pipefail

readonly RUNS=3
readonly START_MARKER='<!-- bench:landing:start -->'
readonly END_MARKER='<!-- bench:landing:end -->'

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)
target_dir=${CARGO_TARGET_DIR:-target}
strata="$(realpath -m "$target_dir/release/strata")"
gen="$(realpath -m "$target_dir/release/examples/gen_landing")"

write=false
build=true
orders=5000000
while [ $# -gt 0 ]; do
    case "$1" in
        --write) write=true ;;
        --no-build) build=false ;;
        --orders) orders=$2; shift ;;
        -h | --help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "error: unexpected argument \`$1\`" >&2; exit 2 ;;
    esac
    shift
done

if $build; then
    cargo build --release --locked --bin strata --example gen_landing
fi

work="$root/bench-out/landing-$orders"
rm -rf "$work"
mkdir -p "$work/tests"
cp -r project.yml models seeds macros "$work/"
cp -r tests/strata "$work/tests/"
echo "generating $orders orders and 3 CDC days into $work/landing" >&2
"$gen" --orders "$orders" --days 3 --out "$work/landing-base" >&2

seconds() { # runs a command, prints its wall time in seconds
    local start end
    start=$(date +%s.%N)
    "$@" >/dev/null 2>"$work/last.log" || { cat "$work/last.log" >&2; exit 1; }
    end=$(date +%s.%N)
    echo "$end - $start" | bc -l
}

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { printf "%.2f", v[int((NR + 1) / 2)] }'; }

full=() incremental=() nothing=() built=() share=""
for round in $(seq 1 "$RUNS"); do
    rm -rf "$work/target" "$work/landing"
    cp -r "$work/landing-base" "$work/landing"
    cd "$work"
    "$strata" seed -q >/dev/null
    full+=("$(seconds "$strata" run --full-refresh)")
    "$gen" --out landing --next-day >/dev/null
    if [ -z "$share" ]; then
        share=$("$strata" show -q --limit 1 --inline "
            select round(100.0 * sum(case when _source_file like '%20240705-%' then 1 else 0 end) / count(*), 2) as share
            from (
                select _source_file from {{ source('shop', 'orders') }} union all
                select _source_file from {{ source('shop', 'order_items') }} union all
                select _source_file from {{ source('shop', 'payments') }} union all
                select _source_file from {{ source('shop', 'customers') }}
            ) as files" | tail -1 | tr -d ' ')
    fi
    incremental+=("$(seconds "$strata" run)")
    nothing+=("$(seconds "$strata" run)")
    "$gen" --out landing --next-day >/dev/null
    built+=("$(seconds "$strata" build)")
    cd "$root"
    echo "round $round: full ${full[-1]} s, incremental ${incremental[-1]} s, nothing new ${nothing[-1]} s, build ${built[-1]} s" >&2
done

f=$(median "${full[@]}")
i=$(median "${incremental[@]}")
n=$(median "${nothing[@]}")
b=$(median "${built[@]}")
ratio=$(echo "100 * $i / $f" | bc -l | xargs printf '%.1f')
commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src examples || echo -dirty)
table="Measured $(date +%F) on $(nproc) cores at commit \`$commit\` by \`bench/landing.sh --write --orders $orders\`:
median of $RUNS rounds, release build, embedded DuckDB. The landing zone has $orders orders in
its full load and 3 CDC days; the day that lands holds ${share}% of all landing rows.

| work | wall |
|---|---|
| \`strata run --full-refresh\`: every landing file through every layer | $f s |
| \`strata run\` after the next day landed: its files only | $i s (${ratio}% of the full refresh) |
| \`strata run\` with no new file | $n s |
| \`strata build\` after one more day, with every data test | $b s |"

echo "$table"
if $write; then
    TABLE="$table" START="$START_MARKER" END="$END_MARKER" python3 - BENCHMARKS.md <<'PY'
import os, sys
path = sys.argv[1]
text = open(path).read()
start, end, table = os.environ["START"], os.environ["END"], os.environ["TABLE"]
block = f"{start}\n{table}\n{end}"
if start in text:
    before = text[: text.index(start)]
    after = text[text.index(end) + len(end):]
    text = before + block + after
else:
    text = text.rstrip() + "\n\n## The example's daily run\n\n" + block + "\n"
open(path, "w").write(text)
PY
fi
