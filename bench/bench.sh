#!/usr/bin/env bash
# Times strata's parse, ls and compile on generated layered projects of several sizes.
#
# Each command runs once to warm the file cache, then RUNS times with strata's own outputs
# (DIR/target) moved aside before every run, so a figure never benefits from a previous run's
# artifacts. They are moved, not deleted, until the timing is over. On an ext4 file system
# without a journal (this project's machines), creating a file skips every inode freed in the
# last 60 s, or 360 s while its inode table block is not yet written back (`recently_deleted`
# in the kernel's fs/ext4/ialloc.c), and checking that costs a buffer lookup per candidate
# inode. Measured 2026-12-02: `compile` of 10,000 models took 1.4 s on a machine that had
# deleted nothing, and 1.7-3.7 s with up to 4.9 s of system time right after about 700,000
# files were deleted; the lookups were still 14% of its samples three minutes later. So the
# projects are generated into a new folder rather than with `--force` over the last run's,
# everything is deleted only at the end, and a second run of this script waits until six
# minutes have passed since the first one's clean-up (wait too after any other mass deletion).
# Each run starts after `sync`, so it does not pay for writing back the previous run's files.
# The table shows the median wall time and the largest peak RSS of those runs.
#
# Usage: bench/bench.sh [--write] [--no-build] [SIZE ...]     (default sizes: 1000 10000)
#   --write     also replace the bench:parse section of BENCHMARKS.md with the table
#   --no-build  use the binaries already built instead of running cargo first
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: bench/bench.sh [--write] [--no-build] [SIZE ...]     (default sizes: 1000 10000)
  --write     also replace the bench:parse section of BENCHMARKS.md with the table
  --no-build  use the binaries already built instead of running cargo first
EOF
}

readonly RUNS=5
readonly START_MARKER='<!-- bench:parse:start -->'
readonly END_MARKER='<!-- bench:parse:end -->'

# Paths below are relative to the repository root, as cargo's are.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
target_dir=${CARGO_TARGET_DIR:-target}
strata="$target_dir/release/strata"
gen_project="$target_dir/release/examples/gen_project"

write=false
build=true
sizes=()
for arg in "$@"; do
    case "$arg" in
        --write) write=true ;;
        --no-build) build=false ;;
        -h | --help)
            usage
            exit 0
            ;;
        *[!0-9]* | '')
            echo "error: unexpected argument \`$arg\`" >&2
            echo >&2
            usage >&2
            exit 2
            ;;
        *) sizes+=("$arg") ;;
    esac
done
if ((${#sizes[@]} == 0)); then
    sizes=(1000 10000)
fi

if [[ ! -x /usr/bin/time ]]; then
    echo 'error: GNU time is needed at /usr/bin/time (apt-get install time)' >&2
    exit 1
fi

if $build; then
    cargo build --release --bin strata --example gen_project >&2
fi
for binary in "$strata" "$gen_project"; do
    if [[ ! -x "$binary" ]]; then
        echo "error: \`$binary\` is missing; run without --no-build" >&2
        exit 1
    fi
done

# The commands to time, as "label|arguments"; DIR stands for the project directory.
commands=(
    'strata parse|parse --project-dir DIR'
    'strata ls --select tag:gold+|ls --project-dir DIR --select tag:gold+ -q'
    'strata compile|compile --project-dir DIR'
)

# When the last run deleted its files (see the top): the next run waits until six minutes have
# passed, so its figures are not slowed down by its predecessor's clean-up.
readonly CLEANED_STAMP="${TMPDIR:-/tmp}/strata-bench.cleaned"
readonly QUIET_SECONDS=360
if [[ -f "$CLEANED_STAMP" ]]; then
    cleaned_at=$(cat "$CLEANED_STAMP" 2>/dev/null || echo 0)
    if [[ "$cleaned_at" =~ ^[0-9]+$ ]]; then
        wait_seconds=$((cleaned_at + QUIET_SECONDS - $(date +%s)))
        if ((wait_seconds > 0)); then
            echo "bench: waiting ${wait_seconds}s: the last run deleted its files less than six minutes ago (remove $CLEANED_STAMP not to wait)" >&2
            sleep "$wait_seconds"
        fi
    fi
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"; date +%s >"$CLEANED_STAMP"' EXIT

# 1234567 -> 1,234,567
with_commas() {
    sed -e ':more' -e 's/^\([0-9]\{1,\}\)\([0-9]\{3\}\)/\1,\2/' -e 't more' <<<"$1"
}

# Runs strata once with the given arguments, its outputs removed first; GNU time writes
# "wall_seconds peak_rss_kib" to $scratch/time. Prints strata's stderr and exits on failure.
run_strata() {
    local project_dir=$1
    shift
    if [[ -d "$project_dir/target" ]]; then
        mv "$project_dir/target" "$scratch/old-target-$RANDOM$RANDOM"
    fi
    # The previous run's files are still being written back to disk for a few seconds; without
    # this the kernel's writeback of 31,000 files lands in the next run's time.
    sync
    if ! /usr/bin/time -f '%e %M' -o "$scratch/time" "$strata" "$@" >/dev/null 2>"$scratch/stderr"; then
        echo "error: \`strata $*\` failed:" >&2
        cat "$scratch/stderr" >&2
        exit 1
    fi
}

declare -A cells
for size in "${sizes[@]}"; do
    # A new folder, not `--force` over the last run's: deleting its tens of thousands of files
    # just before the timing would slow the timed file creation down (see the top).
    project_dir="$scratch/projects/$size"
    echo "bench: generating $size models into $project_dir" >&2
    "$gen_project" --models "$size" --out "$project_dir"

    for index in "${!commands[@]}"; do
        label=${commands[index]%%|*}
        read -r -a arguments <<<"${commands[index]#*|}"
        arguments=("${arguments[@]/#DIR/$project_dir}")

        echo "bench: $size models: $label" >&2
        run_strata "$project_dir" "${arguments[@]}"
        : >"$scratch/samples"
        for ((run = 1; run <= RUNS; run++)); do
            run_strata "$project_dir" "${arguments[@]}"
            tail -n 1 "$scratch/time" >>"$scratch/samples"
        done

        median_wall=$(cut -d ' ' -f 1 "$scratch/samples" | sort -n | sed -n "$(((RUNS + 1) / 2))p")
        peak_mib=$(cut -d ' ' -f 2 "$scratch/samples" | sort -n | tail -n 1 | awk '{ printf "%.0f", $1 / 1024 }')
        cells[$index,$size]="$median_wall s, $peak_mib MiB"
    done
done

table="$scratch/table.md"
{
    header='| work |'
    rule='|---|'
    for size in "${sizes[@]}"; do
        header+=" $(with_commas "$size") models |"
        rule+='---|'
    done
    echo "$header"
    echo "$rule"
    for index in "${!commands[@]}"; do
        row="| \`${commands[index]%%|*}\` |"
        for size in "${sizes[@]}"; do
            row+=" ${cells[$index,$size]} |"
        done
        echo "$row"
    done
} >"$table"
cat "$table"

if $write; then
    benchmarks=BENCHMARKS.md
    # Dirty only when the code differs: this script's own earlier output does not count.
    commit=$(git rev-parse --short HEAD 2>/dev/null || echo 'no commit')
    if ! git diff --quiet HEAD -- . ':!BENCHMARKS.md' 2>/dev/null; then
        commit+='-dirty'
    fi
    today=$(date -u +%Y-%m-%d)
    cores=$(nproc)
    section="$scratch/section.md"
    {
        echo "Measured $today on $cores cores at commit \`$commit\` by \`bench/bench.sh --write\`:"
        echo "median wall time of $RUNS runs after a warm-up, each after \`sync\` and without strata's"
        echo "previous outputs, and the largest peak RSS. Projects come from \`examples/gen_project.rs\`"
        echo "(seed 42)."
        echo
        cat "$table"
    } >"$section"

    if [[ ! -f "$benchmarks" ]]; then
        echo '# Benchmarks' >"$benchmarks"
    fi
    if ! grep -qxF "$START_MARKER" "$benchmarks" || ! grep -qxF "$END_MARKER" "$benchmarks"; then
        printf '\n## Parse, list and compile\n\n%s\n%s\n' "$START_MARKER" "$END_MARKER" >>"$benchmarks"
    fi
    awk -v start="$START_MARKER" -v end="$END_MARKER" -v section="$section" '
        $0 == start {
            print
            while ((getline line < section) > 0) print line
            replacing = 1
            next
        }
        $0 == end { replacing = 0 }
        !replacing { print }
    ' "$benchmarks" >"$scratch/benchmarks.md"
    cp "$scratch/benchmarks.md" "$benchmarks"
    echo "bench: updated $benchmarks" >&2
fi
