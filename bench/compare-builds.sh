#!/usr/bin/env bash
# A/B the load generator across two commits, alternating the builds (ABBA...) so that drift of the machine hits both alike.
#
#   bash bench/compare-builds.sh BASE_REF [NEW_REF=HEAD] [RUNS=3] [-- extra load generator options]
#
# Each ref is checked out into a temporary worktree and built in Release; its load generator starts its own relay
# (relayd dev, durable). Prints per run and the medians: acked msg/s, relay CPU (cores) and relay CPU per message.
# SAME_CLIENT=1: BASE_REF's load generator drives both relays (started here, reached with --relay/--pki/--relay-pid),
# so that only the relay differs between the two sides.
# AOT=1: each side's relayd is also published NativeAOT, as it is packaged, and that binary is the relay measured
# (the JIT'd relay recompiles its hot methods during a run, which shows in latency and RSS; about 75 s per side).
set -euo pipefail

base=${1:?usage: compare-builds.sh BASE_REF [NEW_REF] [RUNS] [-- loadgen options]}
new=${2:-HEAD}
runs=${3:-3}
shift $(( $# < 3 ? $# : 3 ))
[[ ${1:-} == "--" ]] && shift
extra=("$@")

repo=$(git rev-parse --show-toplevel)
work=$(mktemp -d)
trap 'git -C "$repo" worktree remove --force "$work/a" >/dev/null 2>&1 || true; git -C "$repo" worktree remove --force "$work/b" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

for side in a b; do
    ref=$base; [[ $side == b ]] && ref=$new
    git -C "$repo" worktree add --detach "$work/$side" "$ref" >/dev/null
    echo "building $side = $ref ($(git -C "$work/$side" rev-parse --short HEAD))" >&2
    dotnet build -c Release "$work/$side/bench/Relayd.LoadGen" -nologo -v q >/dev/null
    if [[ ${AOT:-0} == 1 ]]; then
        echo "publishing $side NativeAOT" >&2
        dotnet publish "$work/$side/src/Relayd/Relayd.csproj" -r linux-x64 -c Release -p:PublishAot=true -o "$work/$side-aot" -nologo -v q >/dev/null
    fi
done

for ((i = 1; i <= runs; i++)); do
    # a b, then b a, ...: the second run of a pair was slower by ~10% on 2026-12-07 whichever build it was.
    order="a b"; (( i % 2 == 0 )) && order="b a"
    for side in $order; do
        out="$work/$side-$i.json"
        bin="$work/$side/bench/Relayd.LoadGen/bin/Release/net10.0"
        if [[ ${SAME_CLIENT:-0} == 1 ]]; then
            pki=$(mktemp -d -p "$work")
            port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
            # BASE_REF's load generator may predate opt-in (ConsentUpdate) and sends from one user per partner: a
            # relay that requires opt-in and rate-limits users by default is started without either, so both sides
            # run the same path (bench/compare-interop.sh measures the interop rules themselves).
            interop=(); help=$(dotnet "$bin/relayd.dll" dev --help 2>/dev/null || true)
            grep -q -- --no-opt-in <<<"$help" && interop+=(--no-opt-in)
            grep -q -- --rate-limits <<<"$help" && interop+=(--rate-limits off)
            relayd=(dotnet "$bin/relayd.dll"); [[ ${AOT:-0} == 1 ]] && relayd=("$work/$side-aot/relayd")
            "${relayd[@]}" dev --dir "$pki" --port "$port" --partner partner-0 --partner partner-1 "${interop[@]}" >"$pki/relay.log" 2>&1 &
            pid=$!
            for _ in $(seq 150); do grep -q "listening on" "$pki/relay.log" && break; sleep 0.2; done
            dotnet "$work/a/bench/Relayd.LoadGen/bin/Release/net10.0/Relayd.LoadGen.dll" --relay "127.0.0.1:$port" --pki "$pki" --relay-pid "$pid" \
                --duration 10 "${extra[@]}" --json "$out" >/dev/null
            kill "$pid"; wait "$pid" 2>/dev/null || true
        else
            aot=()
            if [[ ${AOT:-0} == 1 ]]; then
                dotnet "$bin/Relayd.LoadGen.dll" --help | grep -q -- --relayd || { echo "compare-builds.sh: $side's load generator has no --relayd; use SAME_CLIENT=1" >&2; exit 2; }
                aot=(--relayd "$work/$side-aot/relayd")
            fi
            dotnet "$bin/Relayd.LoadGen.dll" --duration 10 "${extra[@]}" "${aot[@]}" --json "$out" >/dev/null
        fi
        python3 - "$side" "$i" "$out" <<'EOF'
import json, sys
r = json.load(open(sys.argv[3]))["results"][0]
client = f", client {r['clientCpuCores'] / r['ackedPerSecond'] * 1e6:.2f} us CPU/msg" if r.get("clientCpuCores") else ""
lat = r.get("ackLatencyMs") or {}
rss = f", RSS {r['serverPeakRssBytes'] / 1048576:.0f} MiB" if r.get("serverPeakRssBytes") else ""
print(f"{sys.argv[1]} run {sys.argv[2]}: {r['ackedPerSecond']:,.0f} msg/s, relay {r['serverCpuCores']:.2f} cores, {r['serverCpuCores'] / r['ackedPerSecond'] * 1e6:.2f} us CPU/msg{client}, ack p99 {lat.get('p99', float('nan')):.1f} / max {lat.get('max', float('nan')):.1f} ms{rss}")
EOF
    done
done

python3 - "$work" "$runs" "$base" "$new" <<'EOF'
import json, statistics, sys
work, runs = sys.argv[1], int(sys.argv[2])
rows = {}
for side in "ab":
    rs = [json.load(open(f"{work}/{side}-{i}.json"))["results"][0] for i in range(1, runs + 1)]
    # The load generator's own CPU, from builds that report it (clientCpuCores); NaN otherwise.
    client = [r["clientCpuCores"] / r["ackedPerSecond"] * 1e6 for r in rs if r.get("clientCpuCores")]
    rows[side] = (statistics.median(r["ackedPerSecond"] for r in rs),
                  statistics.median(r["serverCpuCores"] / r["ackedPerSecond"] * 1e6 for r in rs),
                  statistics.median(client) if len(client) == len(rs) else float("nan"),
                  statistics.median(r["ackLatencyMs"]["p99"] for r in rs),
                  statistics.median(r.get("serverPeakRssBytes") or 0 for r in rs) / 1048576)
print()
print("| build | median acked msg/s | median relay CPU per msg | median client CPU per msg | median ack p99 | median relay RSS |")
print("|---|---|---|---|---|---|")
for side, ref in (("a", sys.argv[3]), ("b", sys.argv[4])):
    print(f"| {ref} | {rows[side][0]:,.0f} | {rows[side][1]:.2f} us | {rows[side][2]:.2f} us | {rows[side][3]:.1f} ms | {rows[side][4]:.0f} MiB |")
print(f"| ratio new/base | {rows['b'][0] / rows['a'][0]:.3f} | {rows['b'][1] / rows['a'][1]:.3f} | {rows['b'][2] / rows['a'][2]:.3f} | {rows['b'][3] / rows['a'][3]:.3f} | {rows['b'][4] / max(rows['a'][4], 1e-9):.3f} |")
EOF
