#!/usr/bin/env bash
# Runs every scenario against Switchboard, Prosody and ejabberd in turn (never two at once)
# and prints a table of the figures with the ratios Switchboard / other.
#   bench/compare.sh [bench/run.ts options, e.g. --users 1000 --duration 20]
# Targets: SWITCHBOARD, PROSODY, EJABBERD (host:port; defaults 127.0.0.1:5222, :15222, :25222).
# The memory scenario needs each server's PID: it is read from the socket listening on the
# port, so run this as a user who may see it (root for the servers bench/servers.sh starts).
# Start each server fresh before a comparison: the memory figure counts on an unused heap.
set -euo pipefail
cd "$(dirname "$0")/.."

results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT

columns=()
for server in "Switchboard=${SWITCHBOARD:-127.0.0.1:5222}" "Prosody=${PROSODY:-127.0.0.1:15222}" "ejabberd=${EJABBERD:-127.0.0.1:25222}"; do
  name=${server%%=*} target=${server#*=}
  columns+=("$name=$results/$name.json")
  pid=$(ss -Hltnp "sport = :${target##*:}" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2 || true)
  if [ -z "$pid" ]; then
    echo "$name: nothing listens on $target, skipped" >&2
    continue
  fi
  echo "$name ($target, pid $pid)..." >&2
  node --import tsx bench/run.ts --target "$target" --pid "$pid" --json "$@" >"$results/$name.json.part" \
    && mv "$results/$name.json.part" "$results/$name.json" \
    || echo "$name: the run failed, its column stays empty" >&2
done
echo
node --import tsx bench/table.ts "${columns[@]}"
