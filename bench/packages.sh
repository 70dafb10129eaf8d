#!/usr/bin/env bash
# What installed packages cost `strata parse`: the generated 10,000-model project parsed as it
# is, and again with three local packages holding 300 macros installed by `strata deps`
# (dispatching macros, generic tests and helpers shaped like dbt_utils', dbt_date's and
# audit_helper's, written here), both timed in one run, alternating, so the ratio does not
# depend on the machine's mood. Issue #22 asks for at most 20% more.
#
# Usage: bench/packages.sh [--profile release|debug] [--models N]
#   --profile  which build to time (default release; `debug` where no release build exists:
#              the ratio is what is reported, and debug code inflates both sides)
#   --models   project size (default 10000)
set -euo pipefail

profile=release
models=10000
while (($#)); do
    case "$1" in
        --profile) profile=$2; shift 2 ;;
        --models) models=$2; shift 2 ;;
        -h | --help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "error: unexpected argument \`$1\`" >&2; exit 2 ;;
    esac
done
readonly RUNS=7

cd "$(dirname "${BASH_SOURCE[0]}")/.."
target_dir=${CARGO_TARGET_DIR:-target}
flag=$([[ $profile == release ]] && echo --release || true)
cargo build $flag --bin strata --example gen_project >&2
strata="$target_dir/$profile/strata"
gen_project="$target_dir/$profile/examples/gen_project"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
plain="$scratch/plain"
with="$scratch/with_packages"
"$gen_project" --models "$models" --out "$plain" >&2
cp -r "$plain" "$with"

# Three packages: 120, 100 and 80 macros, ten macros to a file.
write_package() {
    local name=$1 count=$2 dir="$scratch/packages/$1"
    mkdir -p "$dir/macros"
    printf 'name: %s\nversion: "1.0.0"\nconfig-version: 2\n' "$name" >"$dir/dbt_project.yml"
    local i file
    for ((i = 0; i < count; i++)); do
        file="$dir/macros/m$((i / 10)).sql"
        case $((i % 4)) in
            0) cat >>"$file" <<SQL
{% macro helper_$i(relation, columns=none, quote=true) -%}
    {{ return(adapter.dispatch('helper_$i', '$name')(relation, columns, quote)) }}
{%- endmacro %}
{% macro default__helper_$i(relation, columns, quote) -%}
    {%- set cols = columns if columns is not none else ['a', 'b', 'c'] -%}
    {%- for col in cols %}
    {% if quote %}{{ adapter.quote(col) }}{% else %}{{ col }}{% endif %}{% if not loop.last %},{% endif %}
    {%- endfor %}
{%- endmacro %}
SQL
                ;;
            1) cat >>"$file" <<SQL
{% test check_$i(model, column_name, min_value=none, max_value=none) %}
select * from {{ model }}
where 1 = 1
{% if min_value is not none %} and {{ column_name }} < {{ min_value }}{% endif %}
{% if max_value is not none %} and {{ column_name }} > {{ max_value }}{% endif %}
{% endtest %}
SQL
                ;;
            2) cat >>"$file" <<SQL
{% macro date_part_$i(datepart, date) -%}
    {%- set parts = {'day': 'dd', 'month': 'mm', 'year': 'yyyy'} -%}
    {%- if datepart not in parts -%}
        {{ exceptions.raise_compiler_error("unknown date part " ~ datepart) }}
    {%- endif -%}
    extract({{ datepart }} from {{ date }})
{%- endmacro %}
SQL
                ;;
            3) cat >>"$file" <<SQL
{% macro compare_$i(a_relation, b_relation, primary_key, summarize=true) -%}
    {%- set ns = namespace(clauses=[]) -%}
    {%- for side in ['a', 'b'] -%}
        {%- set ns.clauses = ns.clauses + [side ~ '.' ~ primary_key] -%}
    {%- endfor -%}
    select {{ ns.clauses | join(', ') }} from {{ a_relation }} a full outer join {{ b_relation }} b using ({{ primary_key }})
    {%- if summarize %} group by 1, 2{% endif %}
{%- endmacro %}
SQL
                ;;
        esac
    done
}
write_package bench_utils 120
write_package bench_dates 100
write_package bench_audit 80
{
    echo "packages:"
    for name in bench_utils bench_dates bench_audit; do
        echo "  - local: $scratch/packages/$name"
    done
} >"$with/packages.yml"
"$strata" deps --project-dir "$with" -q >&2

seconds() { # one timed parse of $1, outputs moved aside first
    rm -rf "$1/target"
    sync
    /usr/bin/time -f '%e' -o "$scratch/time" "$strata" parse --project-dir "$1" -q >/dev/null
    cat "$scratch/time"
}
seconds "$plain" >/dev/null
seconds "$with" >/dev/null
declare -a a b
for ((run = 0; run < RUNS; run++)); do
    a+=("$(seconds "$plain")")
    b+=("$(seconds "$with")")
done
median() { printf '%s\n' "$@" | sort -n | sed -n "$(((${#@} + 1) / 2))p"; }
ma=$(median "${a[@]}")
mb=$(median "${b[@]}")
macros=$(grep -ho '{% \(macro\|test\) ' "$scratch"/packages/*/macros/*.sql | wc -l)
echo "strata parse, $models models ($profile build, median of $RUNS alternating runs):"
echo "  without packages:           ${ma} s"
echo "  with 3 packages, $macros macros: ${mb} s"
awk -v a="$ma" -v b="$mb" 'BEGIN { printf "  ratio: %.2f (issue #22: at most 1.20)\n", b / a }'
