#!/usr/bin/env bash
# What the docs cost on the generated 10,000-model project (issue #23):
#   - `strata docs generate` against `strata compile` plus the catalog read: the project is
#     built once on DuckDB, then compile, the catalog read alone (`examples/catalog_read.rs`:
#     connect and read the catalog with docs generate's code, in a process of its own) and docs
#     generate are timed in turn (median of RUNS rounds); docs generate prints its phases;
#   - the site in headless Chromium (`tests/browser/perf.mjs`): from navigation to the graph
#     being interactive, and one search, on the generated site.
#
# Usage: bench/docs.sh [--profile release|debug] [--models N]
set -euo pipefail

profile=release
models=10000
while (($#)); do
    case "$1" in
        --profile) profile=$2; shift 2 ;;
        --models) models=$2; shift 2 ;;
        -h | --help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "error: unexpected argument \`$1\`" >&2; exit 2 ;;
    esac
done
readonly RUNS=5

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)
target_dir=${CARGO_TARGET_DIR:-target}
flag=$([[ $profile == release ]] && echo --release || true)
cargo build $flag --bin strata --example gen_project --example catalog_read >&2
strata="$(realpath -m "$target_dir/$profile/strata")"
gen_project="$target_dir/$profile/examples/gen_project"
catalog_read="$target_dir/$profile/examples/catalog_read"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
project="$scratch/project"
"$gen_project" --models "$models" --out "$project" >&2
/usr/bin/time -f 'build: %e s' "$strata" build --project-dir "$project" -q >&2

seconds() { # one timed strata command; its stderr kept in $scratch/err
    /usr/bin/time -f '%e' -o "$scratch/time" "$strata" "$@" --project-dir "$project" 2>"$scratch/err" >/dev/null
    cat "$scratch/time"
}
seconds compile >/dev/null
seconds docs generate >/dev/null
declare -a c k d
for ((run = 0; run < RUNS; run++)); do
    c+=("$(seconds compile)")
    # The catalog read alone: seconds from connecting to the last row, as the example prints.
    k+=("$("$catalog_read" "$project" 2>/dev/null)")
    d+=("$(seconds docs generate)")
done
phases=$(grep -o 'load [0-9.]*s, .*' "$scratch/err" || true)
median() { printf '%s\n' "$@" | sort -n | sed -n "$(((${#@} + 1) / 2))p"; }
mc=$(median "${c[@]}")
mk=$(median "${k[@]}")
md=$(median "${d[@]}")
echo "docs on $models models ($profile build, median of $RUNS rounds):"
echo "  strata compile:       ${mc} s"
echo "  the catalog read alone (connect, list, row counts): ${mk} s"
echo "  strata docs generate: ${md} s (last run's phases: $phases)"
awk -v c="$mc" -v d="$md" -v k="$mk" \
    'BEGIN { printf "  docs generate / (compile + catalog read): %.2f\n", d / (c + k) }'

site=$(find "$project" -name docs-data.js -path '*target*' -printf '%h\n' | head -1)
if [[ -d "$root/tests/browser/node_modules/playwright-core" ]] && command -v chromium >/dev/null; then
    echo "  the site in headless Chromium: $(node "$root/tests/browser/perf.mjs" "$site")"
    echo "  docs-data.js: $(du -h "$site/docs-data.js" | cut -f1)"
else
    echo "  (no Chromium or tests/browser/node_modules: run tests/services.sh for the site's figures)"
fi
