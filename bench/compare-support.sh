#!/usr/bin/env bash
# What the shared-support features cost, in one build and one run: alternates the load generator's standard durable
# run (1 KiB, mutual TLS, window 1024) against relayd dev with every feature on (trace and partner health are its
# defaults; signed evidence is on with --evidence on, as with an [evidence] key) and with each one switched off, so
# drift of the machine hits every variant alike.
#
#   bash bench/compare-support.sh [RUNS=3] [-- extra load generator options]
#
# Prints per run and the medians: acked msg/s, relay CPU (cores), relay CPU per message; then each feature's cost as
# the ratios "all on / that feature off" and the whole as "all on / all off" (issue 14: within 5%, i.e. msg/s ratio
# >= 0.95 and CPU/msg ratio <= 1.05).
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

# variant name -> the relayd dev arguments that make it
evidence_on="--relay-arg=--evidence --relay-arg=on"
declare -A variants=(
    [all-on]="$evidence_on"
    [no-trace]="$evidence_on --relay-arg=--no-trace"
    [no-evidence]=""
    [no-health]="$evidence_on --relay-arg=--health --relay-arg=off"
    [all-off]="--relay-arg=--no-trace --relay-arg=--health --relay-arg=off"
)
order=(all-on no-trace no-evidence no-health all-off)

for ((i = 1; i <= runs; i++)); do
    for v in "${order[@]}"; do
        # shellcheck disable=SC2086 # the variant's arguments are words
        dotnet "$bin" --duration 10 ${variants[$v]} "${extra[@]}" --json "$work/$v-$i.json" >/dev/null
        python3 - "$v" "$i" "$work/$v-$i.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[3]))["results"][0]
print(f"{sys.argv[1]:>11} run {sys.argv[2]}: {r['ackedPerSecond']:,.0f} msg/s, relay {r['serverCpuCores']:.2f} cores, {r['serverCpuCores'] / r['ackedPerSecond'] * 1e6:.2f} us CPU/msg")
PY
    done
done

python3 - "$work" "$runs" "${order[@]}" <<'PY'
import json, statistics, sys
work, runs, order = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
med = {}
for v in order:
    rs = [json.load(open(f"{work}/{v}-{i}.json"))["results"][0] for i in range(1, runs + 1)]
    med[v] = (statistics.median(r["ackedPerSecond"] for r in rs),
              statistics.median(r["serverCpuCores"] / r["ackedPerSecond"] * 1e6 for r in rs))
    print(f"median {v:>11}: {med[v][0]:,.0f} msg/s, {med[v][1]:.2f} us CPU/msg")
for v in order[1:]:
    what = "everything" if v == "all-off" else v[3:]
    print(f"cost of {what:>10} (all-on / {v}): {med['all-on'][0] / med[v][0]:.3f} msg/s, {med['all-on'][1] / med[v][1]:.3f} CPU/msg")
PY
