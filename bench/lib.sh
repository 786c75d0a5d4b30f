# Sourced by the bench scripts that start Switchboard themselves (cluster.sh, workers.sh).

# The load options they share: sets users, duration, subscribers, items, and accounts (enough
# for the messaging users and for the PubSub subscribers plus their publisher).
parse_load_options() {
  users=200 duration=10 subscribers=50 items=5000
  while [ $# -gt 0 ]; do
    case "$1" in
      --users) users=$2; shift 2 ;;
      --duration) duration=$2; shift 2 ;;
      --subscribers) subscribers=$2; shift 2 ;;
      --items) items=$2; shift 2 ;;
      *) echo "unknown option $1" >&2; exit 2 ;;
    esac
  done
  accounts=$(( users > subscribers + 1 ? users : subscribers + 1 ))
}

# Waits (up to a minute) for the server with this pid to log "started" in this file; exits the
# script with the log shown if it dies first.
wait_started() { # name log pid
  for _ in $(seq 600); do
    grep -q '"msg":"started"' "$2" 2>/dev/null && return
    kill -0 "$3" 2>/dev/null || { cat "$2" >&2; exit 1; }
    sleep 0.1
  done
  echo "$1 did not start" >&2
  exit 1
}
