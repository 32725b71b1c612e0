#!/usr/bin/env bash
# Scaling curves (issue 15, goal 8): the load generator's standard durable run (mutual TLS, window 1024, 10 s) with one
# dimension varied at a time from the baseline (2 partners, 1 connection each, 64 users, 1 KiB): partners P = 2, 8,
# 32; connections C = 1, 4; users 64 / 10,000 / 1,000,000; message size 256 B / 1 KiB / 16 KiB / 64 KiB. Opt-in is off
# for the whole series (--opt-in false: a million users would otherwise each need a ConsentUpdate before the run).
#
#   bash bench/scaling.sh [OUT_DIR=bench/results/scaling-DATE]
#
# Writes OUT_DIR/scaling.csv (series,value,acked_per_second,relay_us_per_message,relay_rss_mib), one JSON per run, and
# OUT_DIR/scaling-<series>.svg and .png (the load generator's plot-scaling).
set -euo pipefail

repo=$(git rev-parse --show-toplevel)
out=${1:-$repo/bench/results/scaling-$(date -u +%F)}
mkdir -p "$out"
dotnet build -c Release "$repo/bench/Relayd.LoadGen" -nologo -v q >/dev/null
bin="$repo/bench/Relayd.LoadGen/bin/Release/net10.0/Relayd.LoadGen.dll"

csv="$out/scaling.csv"
echo "series,value,acked_per_second,relay_us_per_message,relay_rss_mib" >"$csv"
run() { # series value args...
    local series=$1 value=$2
    shift 2
    dotnet "$bin" --duration 10 --opt-in false "$@" --json "$out/$series-$value.json" >/dev/null
    python3 - "$series" "$value" "$out/$series-$value.json" >>"$csv" <<'PY'
import json, sys
r = json.load(open(sys.argv[3]))["results"][0]
print(f"{sys.argv[1]},{sys.argv[2]},{r['ackedPerSecond']:.0f},{r['serverCpuCores'] / r['ackedPerSecond'] * 1e6:.2f},{(r['serverPeakRssBytes'] or 0) / 2**20:.0f}")
PY
    tail -n 1 "$csv"
}

for p in 2 8 32; do run partners "$p" --partners "$p"; done
for c in 1 4; do run connections "$c" --connections "$c"; done
for u in 64 10000 1000000; do run users "$u" --users "$u"; done
for s in 256 1024 16384 65536; do run size "$s" --size "$s"; done

dotnet "$bin" plot-scaling "$csv" "$out/scaling"
echo "wrote $csv and $out/scaling-*.svg"
