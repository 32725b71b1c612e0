#!/usr/bin/env bash
# The interop rules' cost in one build: alternates the load generator's runs with opt-in and every rate limit on
# (consent registered for each user, `relayd dev --rate-limits bench`: every bucket checked at rates no run reaches)
# and with both off (`--opt-in false --rate-limits off`), so drift of the machine hits both alike.
#
#   bash bench/compare-interop.sh [RUNS=3] [-- extra load generator options]
#
# Prints per run and the medians: acked msg/s, relay CPU (cores), relay CPU per message, and the ratios on/off.
set -euo pipefail

runs=${1:-3}
shift $(( $# < 1 ? $# : 1 ))
[[ ${1:-} == "--" ]] && shift
extra=("$@")

repo=$(git rev-parse --show-toplevel)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dotnet build -c Release "$repo/bench/Relayd.LoadGen" -nologo -v q >/dev/null
bin="$repo/bench/Relayd.LoadGen/bin/Release/net10.0/Relayd.LoadGen.dll"

for ((i = 1; i <= runs; i++)); do
    for side in on off; do
        flags=(--opt-in true --rate-limits bench)
        [[ $side == off ]] && flags=(--opt-in false --rate-limits off)
        dotnet "$bin" --duration 10 "${flags[@]}" "${extra[@]}" --json "$work/$side-$i.json" >/dev/null
        python3 - "$side" "$i" "$work/$side-$i.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[3]))["results"][0]
print(f"{sys.argv[1]:>3} run {sys.argv[2]}: {r['ackedPerSecond']:,.0f} msg/s, relay {r['serverCpuCores']:.2f} cores, {r['serverCpuCores'] / r['ackedPerSecond'] * 1e6:.2f} us CPU/msg")
PY
    done
done

python3 - "$work" "$runs" <<'PY'
import json, statistics, sys
work, runs = sys.argv[1], int(sys.argv[2])
med = {}
for side in ("on", "off"):
    rs = [json.load(open(f"{work}/{side}-{i}.json"))["results"][0] for i in range(1, runs + 1)]
    med[side] = (statistics.median(r["ackedPerSecond"] for r in rs),
                 statistics.median(r["serverCpuCores"] / r["ackedPerSecond"] * 1e6 for r in rs))
    print(f"median {side:>3}: {med[side][0]:,.0f} msg/s, {med[side][1]:.2f} us CPU/msg")
print(f"ratio on/off: {med['on'][0] / med['off'][0]:.3f} msg/s, {med['on'][1] / med['off'][1]:.3f} CPU/msg")
PY
