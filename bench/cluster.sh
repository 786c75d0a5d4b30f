#!/usr/bin/env bash
# Two Switchboard nodes in cluster mode (NATS and one PostgreSQL), then one node alone, under
# the same messaging and PubSub loads; prints the figures side by side with the ratio two
# nodes / one node. The load generator spreads the accounts over the nodes in turn: about half
# the messaging pairs (paired in login order) and half the PubSub subscribers are on another
# node than their peer or the publisher, so their stanzas cross NATS.
#   SWITCHBOARD_BENCH_PG_URL=postgres://user:pass@127.0.0.1/db bench/cluster.sh \
#     [--users 200] [--duration 10] [--subscribers 50] [--items 5000]
# PORT (5422; the second node PORT+1), NATS_PORT (4422), NICE (10: the load generator's
# niceness), BENCH_STATE (/tmp/switchboard-bench) change the setup. Needs nats-server and the
# compiled CLI (npm run build). Both nodes, NATS and the generator share this machine's cores:
# the figure is the cost of the cluster on one machine, not the gain of a second machine.
set -euo pipefail
cd "$(dirname "$0")/.."

. bench/lib.sh
parse_load_options "$@"
pg=${SWITCHBOARD_BENCH_PG_URL:?set SWITCHBOARD_BENCH_PG_URL to a PostgreSQL database the nodes share}
command -v nats-server >/dev/null || { echo "nats-server is not installed (apt-get install nats-server)" >&2; exit 1; }
port=${PORT:-5422} nats_port=${NATS_PORT:-4422} niceness=${NICE:-10}
state=${BENCH_STATE:-/tmp/switchboard-bench}/cluster
mkdir -p "$state"

write_config() { # name port cluster-mode
  cat >"$state/$1.yaml" <<EOF
# Written by bench/cluster.sh
data-dir: $state/$1
storage: { type: postgres, url: "$pg" }
cluster-mode: $3
cluster: { nats-url: "nats://127.0.0.1:$nats_port", node-name: $1, max-inactivity-time: 10 }
c2s: { host: 127.0.0.1, port: $2, tls-port: 0, plaintext-auth: loopback, max-unauthenticated-per-ip: 1000 }
http: { host: 127.0.0.1, port: 0 }
bosh: { port: 0 }
websocket: { port: 0, tls-port: 0 }
log: { level: warn, dir: $state/$1-run }
EOF
}

results=$(mktemp -d)
pids=()
stop_all() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
}
trap 'stop_all; rm -rf "$results"' EXIT

nats-server -a 127.0.0.1 -p "$nats_port" >"$state/nats.log" 2>&1 &
pids+=($!)

write_config solo "$port" false
SWITCHBOARD_CONFIG=$state/solo.yaml bench/setup-switchboard.sh "$accounts" >&2

start_node() { # name
  node bin/switchboard.js start -c "$state/$1.yaml" >"$state/$1.log" 2>&1 &
  pids+=($!)
  wait_started "$1" "$state/$1.log" "$!"
}

measure() { # label targets result-name
  echo "$1: messaging ($users users, $duration s), then PubSub ($subscribers subscribers, $items items)..." >&2
  nice -n "$niceness" node --import tsx bench/run.ts --scenario messaging --target "$2" \
    --users "$users" --duration "$duration" --json >"$results/messaging.json"
  nice -n "$niceness" node --import tsx bench/pubsub.ts --target "$2" \
    --subscribers "$subscribers" --items "$items" --json >"$results/pubsub.json"
  node -e 'const fs = require("fs"); const [m, p, out] = process.argv.slice(1);
    fs.writeFileSync(out, JSON.stringify({ ...JSON.parse(fs.readFileSync(m, "utf8")), pubsub: JSON.parse(fs.readFileSync(p, "utf8")) }));' \
    "$results/messaging.json" "$results/pubsub.json" "$results/$3.json"
}

write_config a "$port" true
write_config b "$((port + 1))" true
start_node a
start_node b
sleep 2 # both heard each other's heartbeat and exchanged their (empty) session lists
measure "2 nodes" "127.0.0.1:$port,127.0.0.1:$((port + 1))" two
kill -TERM "${pids[1]}" "${pids[2]}"; wait "${pids[1]}" "${pids[2]}" || true
pids=("${pids[0]}")

start_node solo
measure "1 node" "127.0.0.1:$port" one
stop_all

echo
node --import tsx bench/table.ts "2 nodes=$results/two.json" "1 node=$results/one.json"
