#!/usr/bin/env bash
# Coverage-guided fuzzing of relayd's hand parsers with afl++ and SharpFuzz (see fuzz/README.md).
#
#   bash fuzz/run.sh [SECONDS] [TARGET...]     SECONDS per target (default 60); targets default to all four
#
# Publishes the harness, instruments the published relayd.dll, Relayd.Protocol.dll, Tomlyn.dll, Google.Protobuf.dll
# and the harness's oracles, runs one afl-fuzz instance at a time for SECONDS per target, prints exec/s, paths and
# crashes per target, and exits non-zero when a target crashed (or afl-fuzz could not run it).
# FUZZ_ALLOW_CRASHES=1 reports crashes without failing.
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

seconds="${1:-60}"
shift || true
targets=("$@")
((${#targets[@]})) || targets=(frame-reader envelope-header media-chunk config)

tools="$PWD/fuzz/.tools"
publish="$PWD/fuzz/.build/publish"
plain="$PWD/fuzz/.build/plain"
findings="$PWD/fuzz/findings"

command -v afl-fuzz >/dev/null || { echo "fuzz: afl-fuzz is missing (apt-get install afl++)"; exit 1; }
if [[ ! -x "$tools/sharpfuzz" ]]; then
  dotnet tool install --tool-path "$tools" SharpFuzz.CommandLine --version 2.3.0 >/dev/null
fi

# Instrumentation is in place and refuses an instrumented file, so every run starts from a clean publish.
rm -rf "$publish" "$plain"
dotnet publish fuzz/Relayd.Fuzz/Relayd.Fuzz.csproj -c Release -o "$publish" -warnaserror --nologo -v quiet
# Instrumented code needs afl's shared memory: crash inputs are replayed on an uninstrumented copy.
cp -r "$publish" "$plain"
# The code under test, and Tomlyn: the loader's bugs hide in the syntax trees Tomlyn builds, and its coverage is what
# leads afl to new trees. Google.Protobuf and the oracles too: afl keeps one crash per distinct path, so without their
# coverage every disagreement that takes the same path through relayd's reader (e.g. a forged tag and a field number
# 0, both skipped as unknown fields) would count as one crash and only the first would be kept.
for dll in relayd.dll Relayd.Protocol.dll Tomlyn.dll Google.Protobuf.dll; do
  "$tools/sharpfuzz" "$publish/$dll"
done
"$tools/sharpfuzz" "$publish/Relayd.Fuzz.dll" Relayd.Fuzz.Oracles.

# The harness is a .NET program, not a binary afl compiled: skip afl's instrumentation check. One instance on a shared
# machine: no CPU binding. -t is generous because a timeout kills SharpFuzz's in-process fork server for good.
export AFL_SKIP_BIN_CHECK=1 AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 AFL_FORKSRV_INIT_TMOUT=60000
if [[ "$(cat /proc/sys/kernel/core_pattern 2>/dev/null)" == \|* ]] && ! echo core 2>/dev/null >/proc/sys/kernel/core_pattern; then
  export AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
fi

mkdir -p "$findings"
failed=0
summary=()
for target in "${targets[@]}"; do
  out="$findings/$target"
  rm -rf "$out"
  # -D on the wire targets: afl's deterministic stages, every single-bit flip first, once per queue entry. With -Z
  # (the queue in order; afl 4.04c queues the seeds in reverse name order) they reach overlong-tags.bin, one bit from
  # the tag forgery, within seconds; afl's default schedule can leave it unfuzzed for a whole short run. Not on the
  # TOML seeds: a kilobyte of text would spend the run in the deterministic stages.
  dict="fuzz/dict/protobuf.dict" det=(-D)
  [[ "$target" == config ]] && dict="fuzz/dict/toml.dict" det=()
  echo "fuzz: $target for ${seconds}s"
  set +e
  afl-fuzz -Z "${det[@]}" -i "fuzz/corpus/$target" -o "$out" -V "$seconds" -t 5000 -m none -x "$dict" \
    -- "$publish/Relayd.Fuzz" fuzz "$target" </dev/null >"$findings/$target.log" 2>&1 # stdin closed hangs it: .ci/run
  afl_exit=$?
  set -e

  stats="$out/default/fuzzer_stats"
  if [[ ! -f "$stats" ]]; then
    echo "fuzz: $target: afl-fuzz did not start (exit $afl_exit); the end of $findings/$target.log:"
    tail -n 15 "$findings/$target.log"
    summary+=("$target: did not run")
    failed=1
    continue
  fi

  stat_of() { sed -n "s/^$1 *: *//p" "$stats"; }
  execs="$(stat_of execs_done)"
  run_time="$(stat_of run_time)"
  paths="$(stat_of corpus_count)"
  crashes="$(stat_of saved_crashes)"
  hangs="$(stat_of saved_hangs)"
  rate=$((execs / (run_time > 0 ? run_time : 1)))
  line="$target: $execs execs in ${run_time}s = $rate exec/s, $paths paths, $crashes crashes, $hangs hangs"

  if ((afl_exit != 0)); then
    # SharpFuzz runs every input in one process: a hang or a process-killing fault ends the fork server.
    line+=", afl-fuzz stopped early (exit $afl_exit; input: $out/default/.cur_input)"
    failed=1
  fi
  summary+=("$line")

  shopt -s nullglob
  crash_files=("$out"/default/crashes/id:*)
  shopt -u nullglob
  if ((${#crash_files[@]})); then
    failed=1
    # One line per distinct reason (with a count and one of its inputs), then the files; every input's reason is in
    # $target.crashes.txt.
    "$plain/Relayd.Fuzz" replay "$target" "${crash_files[@]}" >"$findings/$target.crashes.txt" || true
    echo "fuzz: $target: ${#crash_files[@]} crash input(s) in $out/default/crashes/ (all listed in $findings/$target.crashes.txt):"
    awk -F '  <- ' '!count[$1]++ { first[$1] = $2; order[++n] = $1 } END { for (i = 1; i <= n; i++) printf "  %d x %s\n      e.g. %s\n", count[order[i]], order[i], first[order[i]] }' \
      "$findings/$target.crashes.txt"
    printf '  %s\n' "${crash_files[@]:0:20}"
    ((${#crash_files[@]} <= 20)) || echo "  ... and $((${#crash_files[@]} - 20)) more"
  fi
done

echo "fuzz results (${seconds}s per target, one afl-fuzz instance at a time):"
printf '  %s\n' "${summary[@]}"
if ((failed)); then
  if [[ "${FUZZ_ALLOW_CRASHES:-0}" == 1 ]]; then
    echo "fuzz: crashes found (FUZZ_ALLOW_CRASHES=1: not failing)"
    exit 0
  fi
  echo "fuzz: FAILED (crash inputs above; make each one a regression in fuzz/regressions/<target>/)"
  exit 1
fi
echo "fuzz: no crashes"
