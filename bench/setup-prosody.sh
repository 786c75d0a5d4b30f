#!/usr/bin/env bash
# Create (or reset the password of) the benchmark accounts <prefix>1..N on a Prosody host.
#   bench/setup-prosody.sh [N=200] [password=bench] [domain=localhost] [prefix=bench]
# PROSODY_CONFIG selects a config file other than Prosody's default
# (bench/servers.sh writes /tmp/switchboard-bench/prosody/prosody.cfg.lua).
set -euo pipefail
count=${1:-200} password=${2:-bench} domain=${3:-localhost} prefix=${4:-bench}
prosodyctl=(prosodyctl ${PROSODY_CONFIG:+--config "$PROSODY_CONFIG"})
for i in $(seq "$count"); do
  # prosodyctl register sets the password of an existing account too.
  "${prosodyctl[@]}" register "$prefix$i" "$domain" "$password"
done
echo "$count accounts ${prefix}1..$prefix$count@$domain ready on Prosody"
