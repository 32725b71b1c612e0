#!/usr/bin/env bash
# One command for the side-by-side benchmark: installs the peers' Debian packages when missing (as root), then runs
# the load generator against relayd, NATS (core and JetStream) and Redis Streams (appendfsync always and everysec),
# all over mutual TLS on loopback. Extra arguments go to the load generator, e.g.:
#   bash bench/compare.sh --duration 10 --json results.json --plot latency.png
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v nats-server >/dev/null 2>&1 || [[ -x /usr/sbin/nats-server ]] || missing+=(nats-server)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if ((${#missing[@]})); then
  if [[ "$(id -u)" -ne 0 ]]; then
    echo "missing: ${missing[*]}; install them with: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
  # The packages start system services on their default ports; the benchmark runs its own instances.
  systemctl stop nats-server redis-server >/dev/null 2>&1 || true
fi
exec dotnet run -c Release --project bench/Relayd.LoadGen -- --peers nats,redis "$@"
