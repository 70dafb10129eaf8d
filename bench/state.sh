#!/usr/bin/env bash
# What a PR check's selection costs: on the generated 10,000-model project, `strata ls` as it
# is, and `strata ls --select state:modified+ --state DIR` against the manifest of a parse
# made before one model was edited (reading that manifest, fingerprinting every node,
# comparing, selecting), timed in one run, alternating, so the ratio does not depend on the
# machine's mood. Issue #20 asks that the comparison cost well under the parse itself.
#
# Usage: bench/state.sh [--profile release|debug] [--models N]
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
        -h | --help) sed -n '2,12p' "$0"; exit 0 ;;
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
project="$scratch/project"
"$gen_project" --models "$models" --out "$project" >&2
"$strata" parse --project-dir "$project" -q >&2
target=$(find "$project" -name manifest.json -path '*target*' | head -1)
mkdir -p "$scratch/prod"
cp "$target" "$scratch/prod/manifest.json"
# One edit: a model in the middle of the DAG.
edited=$(find "$project/models" -name '*.sql' | sort | sed -n "$((models / 2))p")
printf '\n-- edited by the pull request\n' >>"$edited"

seconds() { # one timed `strata ls` with the given arguments
    /usr/bin/time -f '%e' -o "$scratch/time" "$strata" ls --project-dir "$project" -q "$@" >"$scratch/listed"
    cat "$scratch/time"
}
seconds >/dev/null
seconds --select state:modified+ --state "$scratch/prod" >/dev/null
selected=$(wc -l <"$scratch/listed")
declare -a a b
for ((run = 0; run < RUNS; run++)); do
    a+=("$(seconds)")
    b+=("$(seconds --select state:modified+ --state "$scratch/prod")")
done
median() { printf '%s\n' "$@" | sort -n | sed -n "$(((${#@} + 1) / 2))p"; }
ma=$(median "${a[@]}")
mb=$(median "${b[@]}")
echo "strata ls, $models models ($profile build, median of $RUNS alternating runs):"
echo "  plain ls:                          ${ma} s"
echo "  ls --select state:modified+ --state: ${mb} s ($selected nodes listed after one edit)"
awk -v a="$ma" -v b="$mb" 'BEGIN { printf "  the comparison: %.2f s, %.0f%% of the plain ls (which is mostly the parse)\n", b - a, 100 * (b - a) / a }'
