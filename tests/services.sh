#!/usr/bin/env bash
# Starts what the test suite talks to, installing it first where it is missing: PostgreSQL from
# Debian's packages at 127.0.0.1:5432, with trust auth for the `postgres` user over TCP (the
# tests connect without a password). Safe to run again: a running server is left as it is.
# `.ci/run` and the README's test command both run this script.
set -euo pipefail

as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

if ! command -v pg_lsclusters >/dev/null 2>&1 || [[ -z $(pg_lsclusters --no-header 2>/dev/null) ]]; then
    echo "services: installing PostgreSQL from Debian's packages" >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi

read -r version cluster _ < <(pg_lsclusters --no-header | head -n 1)
hba="/etc/postgresql/$version/$cluster/pg_hba.conf"
rule='host all postgres 127.0.0.1/32 trust'
if ! as_root grep -qxF "$rule" "$hba"; then
    # First match wins in pg_hba.conf: the trust rule goes above the packaged ones.
    as_root sed -i "1i $rule" "$hba"
    reload=true
else
    reload=false
fi

if pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
    if $reload; then as_root pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" reload; fi
else
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" start
fi
for _ in $(seq 1 60); do
    pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null && break
    sleep 0.5
done
psql -h 127.0.0.1 -U postgres -d postgres -X -q -At -c 'select 1' >/dev/null
echo "services: PostgreSQL $version is up at 127.0.0.1:5432 (user postgres, trust)" >&2
"$(dirname "${BASH_SOURCE[0]}")/redshift/start.sh"
"$(dirname "${BASH_SOURCE[0]}")/athena/start.sh"

# The docs site's browser test drives Debian's Chromium through playwright-core (pinned in
# tests/browser/package-lock.json); playwright never downloads a browser of its own here.
if ! command -v chromium >/dev/null 2>&1; then
    echo "services: installing Chromium from Debian's packages" >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
if ! command -v npm >/dev/null 2>&1; then
    echo "services: installing Node.js from Debian's packages" >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
browser_tests="$(dirname "${BASH_SOURCE[0]}")/browser"
if [[ ! -d $browser_tests/node_modules/playwright-core ]]; then
    (cd "$browser_tests" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
