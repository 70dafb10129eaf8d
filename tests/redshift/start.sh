#!/usr/bin/env bash
# Starts the local Amazon Redshift stand-in (standin.py: a wire-protocol front and the Data
# API over the PostgreSQL that tests/services.sh starts) and moto's S3 beside it, installing
# their Python packages first into a venv under ~/.cache/strata-standin, outside the work tree.
# Safe to run again: what is up and current is left as it is; a stand-in started from older
# files is restarted. Logs: ~/.cache/strata-standin/{standin,moto}.log.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
home="$HOME/.cache/strata-standin"
venv="$home/venv"
wire_port=${STANDIN_WIRE_PORT:-5439}
api_port=${STANDIN_DATA_API_PORT:-4439}
s3_port=${STANDIN_S3_PORT:-4566}
mkdir -p "$home"

# The same digest standin.py reports in /_standin/health: its files, in byte order.
version=$(export LC_ALL=C && cd "$here" && cat -- *.py requirements.txt | sha256sum | cut -c1-16)

answers() { [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1") != 000 ]]; }
standin_current() {
    curl -sf --max-time 5 "http://127.0.0.1:$api_port/_standin/health" 2>/dev/null |
        grep -q "\"version\": \"$version\""
}
s3_up() { answers "http://127.0.0.1:$s3_port/"; }

# Starts `$@` detached from this shell, its pid in $home/$name.pid, its output in $name.log.
launch() {
    local name=$1
    shift
    setsid nohup "$@" >"$home/$name.log" 2>&1 </dev/null &
    echo $! >"$home/$name.pid"
}

# Ends a process that this script started, by the pid it wrote.
stop() {
    local pidfile="$home/$1.pid"
    if [[ -f $pidfile ]]; then
        kill "$(cat "$pidfile")" 2>/dev/null || true
        rm -f "$pidfile"
    fi
}

fail() {
    echo "services: the Redshift stand-in did not come up: $1" >&2
    for log in "$home/standin.log" "$home/moto.log"; do
        if [[ -f $log ]]; then
            echo "--- last lines of $log" >&2
            tail -n 30 "$log" >&2
        fi
    done
    exit 1
}

if ! standin_current || ! s3_up; then
    requirements=$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)
    if [[ $(cat "$venv/.requirements" 2>/dev/null) != "$requirements" ]]; then
        echo "services: installing the Redshift stand-in's Python packages into $venv" >&2
        stop standin
        stop moto
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt" \
            >"$home/pip.log" 2>&1 || { tail -n 30 "$home/pip.log" >&2; exit 1; }
        echo "$requirements" >"$venv/.requirements"
    fi
    if ! s3_up; then
        launch moto "$venv/bin/moto_server" -H 127.0.0.1 -p "$s3_port"
    fi
    if ! standin_current; then
        stop standin
        # A stand-in from older files, or anything else, may still hold the ports for a moment.
        for _ in $(seq 1 20); do
            answers "http://127.0.0.1:$api_port/_standin/health" || break
            sleep 0.25
        done
        # No __pycache__ in the work tree.
        PYTHONDONTWRITEBYTECODE=1 STANDIN_WIRE_PORT=$wire_port STANDIN_DATA_API_PORT=$api_port \
            STANDIN_S3_PORT=$s3_port launch standin "$venv/bin/python" "$here/standin.py"
    fi
    for _ in $(seq 1 120); do
        standin_current && s3_up && break
        for name in standin moto; do
            if [[ -f $home/$name.pid ]] && ! kill -0 "$(cat "$home/$name.pid")" 2>/dev/null; then
                rm -f "$home/$name.pid"
                fail "$name exited"
            fi
        done
        sleep 0.25
    done
    standin_current || fail "no healthy answer from http://127.0.0.1:$api_port/_standin/health"
    s3_up || fail "no answer from moto at http://127.0.0.1:$s3_port"
fi

# Path-style and unsigned: moto takes it. 409 is "already yours".
status=$(curl -s -o /dev/null -w '%{http_code}' -X PUT "http://127.0.0.1:$s3_port/strata-staging")
[[ $status == 200 || $status == 409 ]] || fail "creating bucket strata-staging answered HTTP $status"

# A cluster's first database is `dev`, which the example's Redshift targets use by default.
if [[ -z $(psql -h 127.0.0.1 -U postgres -d postgres -X -q -At -c "select 1 from pg_database where datname = 'dev'") ]]; then
    psql -h 127.0.0.1 -U postgres -d postgres -X -q -c "create database dev" >/dev/null
fi

echo "services: Redshift stand-in is up (wire 127.0.0.1:$wire_port, Data API http://127.0.0.1:$api_port, S3 http://127.0.0.1:$s3_port)" >&2
