#!/usr/bin/env bash
# A real fleet on one machine: a manager and N real agent processes (all with a manager URL) in one
# zone, on loopback. Measures the CPU of the idle fleet (manager + agents, from /proc), the time a CLI
# fan-out `klevr task run --zone Z --all -- 'echo hi'` takes to return every output, and whether the
# zone's lease epoch moved (a failover nobody caused). Figures go to BENCHMARKS.md.
#
#   scripts/bench-fleet.sh [AGENTS=50] [FANOUTS=20] [IDLE_SECONDS=30]
#
# Uses .build/release/klevr (build it with `swift build -c release`), or KLEVR_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."
AGENTS=${1:-50}
FANOUTS=${2:-20}
IDLE=${3:-30}
BIN=${KLEVR_BIN:-$PWD/.build/release/klevr}
[ -x "$BIN" ] || { echo "no $BIN: run swift build -c release first" >&2; exit 1; }
ulimit -n "$(ulimit -Hn)" || true

DIR=$(mktemp -d /tmp/klevr-fleet.XXXXXX)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  sleep 1
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  rm -rf "$DIR"
}
trap cleanup EXIT

PORT=$(free_port)
URL="http://127.0.0.1:$PORT"
PASSWORD=fleet-bench-password
"$BIN" manager --data-dir "$DIR/manager" --listen "127.0.0.1:$PORT" --admin-password "$PASSWORD" --log-level error >"$DIR/manager.log" 2>&1 &
PIDS+=($!)
MANAGER_PID=$!
for _ in $(seq 100); do curl -sf "$URL/readyz" >/dev/null && break; sleep 0.2; done
export KLEVR_CONFIG="$DIR/cli.json"
"$BIN" login --server "$URL" --username admin --password "$PASSWORD" >/dev/null
"$BIN" zone create fleet >/dev/null
KEY=$("$BIN" zone enroll-key create fleet --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')

echo "starting $AGENTS agents…"
for i in $(seq "$AGENTS"); do
  KLEVR_ENROLL_KEY="$KEY" "$BIN" agent run --manager "$URL" --zone fleet --state-dir "$DIR/agents/$i" \
    --work-dir "$DIR/work/$i" --listen "127.0.0.1:$(free_port)" --log-level error >"$DIR/agent-$i.log" 2>&1 &
  PIDS+=($!)
done
TOKEN=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["token"])' "$KLEVR_CONFIG")
online() { curl -sf -H "Authorization: Bearer $TOKEN" "$URL/api/v1/agents?zone=fleet&limit=500" \
  | python3 -c 'import json,sys; print(sum(1 for a in json.load(sys.stdin)["items"] if a["status"]=="online"))'; }
for _ in $(seq 300); do [ "$(online)" = "$AGENTS" ] && break; sleep 0.5; done
echo "online: $(online) of $AGENTS"
epoch() { curl -sf -H "Authorization: Bearer $TOKEN" "$URL/api/v1/zones/fleet" | python3 -c 'import json,sys; print(json.load(sys.stdin)["epoch"])'; }

# Warm up: every agent has run once (connections open, long polls held).
"$BIN" task run --zone fleet --all -- 'echo warm' >/dev/null
sleep 5
EPOCH_BEFORE=$(epoch)

cpu_ticks() { # user+system ticks of the given pids
  python3 - "$@" <<'PY'
import sys
total = 0
for pid in sys.argv[1:]:
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        continue
    fields = stat[stat.rindex(")") + 2:].split()
    total += int(fields[11]) + int(fields[12])
print(total)
PY
}
HZ=$(getconf CLK_TCK)
echo "idle for $IDLE s…"
T0=$(cpu_ticks "${PIDS[@]}"); M0=$(cpu_ticks "$MANAGER_PID"); S0=$(date +%s.%N)
sleep "$IDLE"
T1=$(cpu_ticks "${PIDS[@]}"); M1=$(cpu_ticks "$MANAGER_PID"); S1=$(date +%s.%N)
IDLE_PCT=$(python3 -c "print(round(($T1-$T0)/$HZ/($S1-$S0)*100, 2))")
MANAGER_PCT=$(python3 -c "print(round(($M1-$M0)/$HZ/($S1-$S0)*100, 2))")

echo "fan-out $FANOUTS times…"
TIMES=()
for _ in $(seq "$FANOUTS"); do
  START=$(date +%s%N)
  OUT=$("$BIN" task run --zone fleet --all -- 'echo hi')
  END=$(date +%s%N)
  N=$(grep -c '\] hi$' <<<"$OUT" || true)
  [ "$N" = "$AGENTS" ] || { echo "a fan-out returned $N outputs, not $AGENTS" >&2; exit 1; }
  TIMES+=($(( (END - START) / 1000000 )))
done
EPOCH_AFTER=$(epoch)
# Where the time of the last fan-out went, in the manager's times (ms after the task was created).
TASK=$(curl -sf -H "Authorization: Bearer $TOKEN" "$URL/api/v1/tasks?zone=fleet&limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][0]["id"])')
curl -sf -H "Authorization: Bearer $TOKEN" "$URL/api/v1/runs?task=$TASK&limit=500" | python3 -c '
import json, sys
runs = json.load(sys.stdin)["items"]
created = min(r["createdAt"] for r in runs)
for name in ("dispatchedAt", "startedAt", "finishedAt"):
    values = sorted(r[name] - created for r in runs if r.get(name))
    print(f"last fan-out: {name} after creation: median {values[len(values)//2]} ms, last {values[-1]} ms")
' || true
SORTED=$(printf '%s\n' "${TIMES[@]}" | sort -n | tr '\n' ' ')
P50=$(printf '%s\n' "${TIMES[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "fan-out wall times (ms): $SORTED"
echo "fleet agents=$AGENTS idle_cpu_pct_of_one_core=$IDLE_PCT idle_manager_cpu_pct=$MANAGER_PCT fanout_p50_ms=$P50 epoch_before=$EPOCH_BEFORE epoch_after=$EPOCH_AFTER"
