#!/usr/bin/env bash
# Create (or reset the password of) the benchmark accounts <prefix>1..N on an ejabberd host.
#   bench/setup-ejabberd.sh [N=200] [password=bench] [domain=localhost] [prefix=bench]
# EJABBERDCTL_CFG selects an ejabberdctl.cfg other than the default
# (bench/servers.sh writes /tmp/switchboard-bench/ejabberd/ejabberdctl.cfg).
set -euo pipefail
count=${1:-200} password=${2:-bench} domain=${3:-localhost} prefix=${4:-bench}
register() {
  local ctl=(ejabberdctl ${EJABBERDCTL_CFG:+--ctl-config "$EJABBERDCTL_CFG"})
  "${ctl[@]}" register "$1" "$domain" "$password" >/dev/null 2>&1 \
    || "${ctl[@]}" change_password "$1" "$domain" "$password"
}
export -f register
export domain password EJABBERDCTL_CFG
# Each ejabberdctl call boots an Erlang VM (~0.3 s): run four at a time.
seq "$count" | sed "s/^/$prefix/" | xargs -P 4 -I{} bash -c 'register "$1"' _ {}
echo "$count accounts ${prefix}1..$prefix$count@$domain ready on ejabberd"
