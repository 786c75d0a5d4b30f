#!/usr/bin/env bash
# Switchboard with 1 worker, then with N workers (`workers:`), under the same messaging and
# PubSub loads; prints the figures side by side with the ratio N workers / 1 worker.
#   bench/workers.sh [--users 200] [--duration 10] [--subscribers 50] [--items 5000]
# WORKERS ("2"), PORT (5322), NICE (10: the load generator's niceness; 0 for none),
# BENCH_STATE (/tmp/switchboard-bench) change the setup. Needs the compiled CLI (npm run build).
# The generator runs on the same cores as the server: NICE gives the server priority, so that
# the server, not the generator, is what the figures measure (see bench/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."

. bench/lib.sh
parse_load_options "$@"
workers=${WORKERS:-2} port=${PORT:-5322} niceness=${NICE:-10}
state=${BENCH_STATE:-/tmp/switchboard-bench}/workers
mkdir -p "$state"

write_config() { # workers
  cat >"$state/switchboard.yaml" <<EOF
# Written by bench/workers.sh
data-dir: $state/data
workers: $1
c2s: { host: 127.0.0.1, port: $port, tls-port: 0, plaintext-auth: loopback, max-unauthenticated-per-ip: 1000 }
http: { host: 127.0.0.1, port: 0 }
bosh: { port: 0 }
websocket: { port: 0, tls-port: 0 }
log: { level: warn, dir: $state/run }
EOF
}

write_config 1
if [ "$(cat "$state/accounts" 2>/dev/null || echo 0)" -lt "$accounts" ]; then
  echo "creating $accounts accounts..." >&2
  SWITCHBOARD_CONFIG=$state/switchboard.yaml bench/setup-switchboard.sh "$accounts" >&2
  echo "$accounts" >"$state/accounts"
fi

# Milliseconds of CPU the server used so far: the primary and its workers.
server_cpu_ms() {
  local ticks=0 pid
  for pid in "$server" $(pgrep -P "$server"); do
    ticks=$((ticks + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  echo $((ticks * 1000 / $(getconf CLK_TCK)))
}

results=$(mktemp -d)
server=
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$results"' EXIT
columns=()
for count in "$workers" 1; do
  write_config "$count"
  node bin/switchboard.js start -c "$state/switchboard.yaml" >"$state/server.log" 2>&1 &
  server=$!
  wait_started switchboard "$state/server.log" "$server"
  label="$count worker$([ "$count" = 1 ] || echo s)"
  echo "$label: messaging ($users users, $duration s), then PubSub ($subscribers subscribers, $items items)..." >&2
  echo "  load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  cpu0=$(server_cpu_ms)
  nice -n "$niceness" node --import tsx bench/run.ts --scenario messaging --target "127.0.0.1:$port" \
    --users "$users" --duration "$duration" --json >"$results/messaging.json"
  cpu1=$(server_cpu_ms)
  nice -n "$niceness" node --import tsx bench/pubsub.ts --target "127.0.0.1:$port" \
    --subscribers "$subscribers" --items "$items" --json >"$results/pubsub.json"
  cpu2=$(server_cpu_ms)
  # The server's CPU per 1000 deliveries (logins included for messaging): its cost, whatever the
  # machine's other load did to the throughput.
  node -e 'const fs = require("fs"); const [m, p, out, c0, c1, c2] = process.argv.slice(1);
    const messaging = JSON.parse(fs.readFileSync(m, "utf8")), pubsub = JSON.parse(fs.readFileSync(p, "utf8"));
    const notifications = (pubsub.flat?.notifications ?? 0) + (pubsub.collection?.notifications ?? 0);
    fs.writeFileSync(out, JSON.stringify({ ...messaging, pubsub, serverCpu: {
      messagingMsPer1000: +((c1 - c0) / messaging.messaging.messages * 1000).toFixed(1),
      pubsubMsPer1000: +((c2 - c1) / notifications * 1000).toFixed(1) } }));' \
    "$results/messaging.json" "$results/pubsub.json" "$results/$count.json" "$cpu0" "$cpu1" "$cpu2"
  columns+=("$label=$results/$count.json")
  kill -TERM "$server"
  wait "$server" || true
  server=
done
echo
node --import tsx bench/table.ts "${columns[@]}"
