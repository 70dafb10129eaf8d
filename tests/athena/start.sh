#!/usr/bin/env bash
# Starts the local Amazon Athena stand-in: moto's Glue and S3 (moto_glue.py), a real Trino
# whose catalogs keep their tables there (config in trino/), and the Athena API front
# (standin.py) over Trino. Installs what is missing first, outside the work tree: the Python
# packages into a venv under ~/.cache/strata-athena, Trino from Maven Central into
# ~/.cache/strata-trino (run with the Temurin 25 JDK, as Trino 476 needs Java 24 or later).
# Safe to run again: what is up and current is left as it is; what was started from older
# files is restarted (Trino too when moto restarts, since moto keeps its Glue and S3 in memory).
# Logs: ~/.cache/strata-athena/{front,moto,trino,trino-launcher}.log.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
home="$HOME/.cache/strata-athena"
trino_home="$HOME/.cache/strata-trino"
venv="$home/venv"
athena_port=${STANDIN_ATHENA_PORT:-4440}
trino_port=${STANDIN_TRINO_PORT:-8090}
moto_port=${STANDIN_MOTO_PORT:-4567}
trino_version=476
install="$trino_home/trino-server-$trino_version"
java_home=/usr/lib/jvm/temurin-25-jdk-amd64
mkdir -p "$home" "$trino_home/dl" "$trino_home/data"

# Digests of files of this folder, in byte order of their paths. `version` is the one
# standin.py reports in /_standin/health.
digest() { (cd "$here" && cat -- "$@" | sha256sum | cut -c1-16); }
trino_files=$(cd "$here" && find trino -type f | LC_ALL=C sort)
version=$(digest $(cd "$here" && find . -maxdepth 1 -name '*.py' | LC_ALL=C sort) requirements.txt $trino_files)
moto_version=$(digest moto_glue.py requirements.txt)
trino_config=$(digest $trino_files)

answers() { [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1") != 000 ]]; }
front_current() {
    curl -sf --max-time 10 "http://127.0.0.1:$athena_port/_standin/health" 2>/dev/null |
        grep -q "\"version\": \"$version\""
}
moto_up() { answers "http://127.0.0.1:$moto_port/moto-api/"; }
moto_current() { moto_up && [[ $(cat "$home/moto.version" 2>/dev/null) == "$moto_version" ]]; }
trino_up() { curl -sf --max-time 2 "http://127.0.0.1:$trino_port/v1/info" 2>/dev/null | grep -q '"starting":false'; }
trino_current() { trino_up && [[ $(cat "$home/trino.version" 2>/dev/null) == "$trino_config" ]]; }

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

# Trino as this script started it: its launcher stops it by the pid file it was given.
trino_launcher() {
    JAVA_HOME=$java_home PATH="$java_home/bin:$PATH" STANDIN_TRINO_PORT=$trino_port STANDIN_MOTO_PORT=$moto_port \
        "$install/bin/launcher" --etc-dir "$trino_home/etc" --data-dir "$trino_home/data" \
        --pid-file "$home/trino.pid" --server-log-file "$home/trino.log" \
        --launcher-log-file "$home/trino-launcher.log" "$@"
}
stop_trino() {
    if [[ -f $home/trino.pid ]]; then
        trino_launcher stop >/dev/null 2>&1 || true
        rm -f "$home/trino.pid" "$home/trino.version"
    fi
}

fail() {
    echo "services: the Athena stand-in did not come up: $1" >&2
    for log in front moto trino trino-launcher pip; do
        if [[ -f $home/$log.log ]]; then
            echo "--- last lines of $home/$log.log" >&2
            tail -n 30 "$home/$log.log" >&2
        fi
    done
    exit 1
}

# Waits up to $1 seconds for the command line `$2` to succeed, failing when a process named
# in $3… exits.
wait_for() {
    local seconds=$1 check=$2 name
    shift 2
    for _ in $(seq 1 $((seconds * 4))); do
        eval "$check" && return 0
        for name in "$@"; do
            if [[ -f $home/$name.pid ]] && ! kill -0 "$(cat "$home/$name.pid")" 2>/dev/null; then
                rm -f "$home/$name.pid"
                fail "$name exited"
            fi
        done
        sleep 0.25
    done
    return 1
}

install_trino() {
    local artifact file
    for artifact in trino-server-core trino-hive trino-iceberg; do
        [[ $artifact == trino-server-core ]] && file=$artifact-$trino_version.tar.gz || file=$artifact-$trino_version.zip
        if [[ ! -f $trino_home/dl/$file ]]; then
            echo "services: downloading $file from Maven Central" >&2
            curl -fsSL --retry 3 -o "$trino_home/dl/$file.part" \
                "https://repo1.maven.org/maven2/io/trino/$artifact/$trino_version/$file" ||
                fail "downloading $file failed"
            mv "$trino_home/dl/$file.part" "$trino_home/dl/$file"
        fi
    done
    echo "services: unpacking Trino $trino_version into $install" >&2
    local unpack="$trino_home/unpack"
    rm -rf "$unpack" "$install"
    mkdir -p "$unpack"
    tar xzf "$trino_home/dl/trino-server-core-$trino_version.tar.gz" -C "$unpack"
    local plugins="$unpack/trino-server-core-$trino_version/plugin"
    for plugin in hive iceberg; do
        python3 -m zipfile -e "$trino_home/dl/trino-$plugin-$trino_version.zip" "$plugins"
        mv "$plugins/trino-$plugin-$trino_version" "$plugins/$plugin"
    done
    mv "$unpack/trino-server-core-$trino_version" "$install"
    rmdir "$unpack"
    touch "$install/.unpacked"
}

if ! front_current || ! moto_current || ! trino_current; then
    [[ -x $java_home/bin/java ]] || fail "no Java at $java_home (Trino $trino_version needs Java 24 or later)"
    requirements=$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)
    if [[ $(cat "$venv/.requirements" 2>/dev/null) != "$requirements" ]]; then
        echo "services: installing the Athena stand-in's Python packages into $venv" >&2
        stop front
        stop moto
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt" \
            >"$home/pip.log" 2>&1 || fail "pip could not install requirements.txt"
        echo "$requirements" >"$venv/.requirements"
    fi
    [[ -f $install/.unpacked ]] || install_trino

    restart_trino=false
    if ! moto_current; then
        stop moto
        wait_for 5 '! moto_up' || fail "something else answers at http://127.0.0.1:$moto_port"
        PYTHONDONTWRITEBYTECODE=1 launch moto "$venv/bin/python" "$here/moto_glue.py" -H 127.0.0.1 -p "$moto_port"
        wait_for 30 moto_up moto || fail "no answer from moto at http://127.0.0.1:$moto_port"
        echo "$moto_version" >"$home/moto.version"
        restart_trino=true
    fi

    if $restart_trino || ! trino_current; then
        stop_trino
        wait_for 20 '! trino_up' || fail "something else answers at http://127.0.0.1:$trino_port"
        rm -rf "$trino_home/etc"
        cp -r "$here/trino" "$trino_home/etc"
        trino_launcher start >/dev/null || fail "Trino's launcher could not start it"
        echo "$trino_config" >"$home/trino.version"
    fi

    if ! front_current; then
        stop front
        wait_for 5 "! answers http://127.0.0.1:$athena_port/_standin/health" ||
            fail "something else answers at http://127.0.0.1:$athena_port"
        # No __pycache__ in the work tree.
        PYTHONDONTWRITEBYTECODE=1 STANDIN_ATHENA_PORT=$athena_port STANDIN_TRINO_PORT=$trino_port \
            STANDIN_MOTO_PORT=$moto_port launch front "$venv/bin/python" "$here/standin.py"
    fi
    # A cold Trino takes a while on two cores.
    wait_for 180 trino_up trino || fail "Trino did not finish starting at http://127.0.0.1:$trino_port"
    wait_for 60 front_current front || fail "no healthy answer from http://127.0.0.1:$athena_port/_standin/health"
fi

# Path-style and unsigned: moto takes it. 409 is "already yours".
status=$(curl -s -o /dev/null -w '%{http_code}' -X PUT "http://127.0.0.1:$moto_port/strata-athena")
[[ $status == 200 || $status == 409 ]] || fail "creating bucket strata-athena answered HTTP $status"
# Every Athena account has the Glue database `default`. 400 is AlreadyExistsException.
status=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$moto_port/" \
    -H 'Content-Type: application/x-amz-json-1.1' -H 'X-Amz-Target: AWSGlue.CreateDatabase' \
    -H 'Authorization: AWS4-HMAC-SHA256 Credential=standin/20240101/us-east-1/glue/aws4_request, SignedHeaders=host, Signature=0' \
    --data '{"DatabaseInput": {"Name": "default", "LocationUri": "s3://strata-athena/warehouse/default/"}}')
[[ $status == 200 || $status == 400 ]] || fail "creating Glue database default answered HTTP $status"

echo "services: Athena stand-in is up (Athena and Glue http://127.0.0.1:$athena_port, Trino http://127.0.0.1:$trino_port, S3 http://127.0.0.1:$moto_port)" >&2
