#!/usr/bin/env bash
# Create (or reset the password of) the benchmark accounts <prefix>1..N on Switchboard.
#   bench/setup-switchboard.sh [N=200] [password=bench] [domain=localhost] [prefix=bench]
# SWITCHBOARD_CONFIG selects the configuration, as for the switchboard command.
# Needs the compiled CLI (npm run build).
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-200} password=${2:-bench} domain=${3:-localhost} prefix=${4:-bench}
add() {
  node bin/switchboard.js user add "$1@$domain" --password "$password" >/dev/null 2>&1 \
    || node bin/switchboard.js user passwd "$1@$domain" --password "$password" >/dev/null
}
export -f add
export domain password
# One Node process per account: run four at a time.
seq "$count" | sed "s/^/$prefix/" | xargs -P 4 -I{} bash -c 'add "$1"' _ {}
echo "$count accounts ${prefix}1..$prefix$count@$domain ready on Switchboard"
