#!/usr/bin/env bash
# Fuzzes the manager's API against its OpenAPI document with schemathesis (every check) and exits
# non-zero on any finding. It starts a throwaway manager (SQLite, loopback, its own temp dir and port),
# makes an admin token, a viewer token and an agent credential (a real agent enrolls once and is
# stopped, so nothing the fuzzer creates ever runs), and runs schemathesis once per credential.
#
#   scripts/fuzz-api.sh [KLEVR_BIN]      (default: .build/debug/klevr; build first)
#
# Environment: KLEVR_FUZZ_EXAMPLES (test cases per operation and phase, default 30), KLEVR_FUZZ_SEED
# (default 1, so that a finding reproduces), KLEVR_FUZZ_KEEP=1 keeps the temp dir (reports, logs).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${1:-${KLEVR_BIN:-$PWD/.build/debug/klevr}}
EXAMPLES=${KLEVR_FUZZ_EXAMPLES:-30}
SEED=${KLEVR_FUZZ_SEED:-1}
SPEC=$PWD/Sources/KlevrAPI/openapi.yaml
HOOKS_DIR=$PWD/scripts
log() { printf '== fuzz: %s\n' "$*"; }

if ! command -v schemathesis >/dev/null 2>&1; then
  log "installing schemathesis"
  python3 -m pip install -q 'schemathesis>=4,<5'
fi

DIR=$(mktemp -d /tmp/klevr-fuzz.XXXXXX)
MANAGER_PID=
AGENT_PID=
cleanup() {
  # Only the processes this script started, by their pid.
  [ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null || true
  [ -n "$MANAGER_PID" ] && kill "$MANAGER_PID" 2>/dev/null || true
  [ -n "$MANAGER_PID" ] && wait "$MANAGER_PID" 2>/dev/null || true
  if [ "${KLEVR_FUZZ_KEEP:-0}" = 1 ]; then log "kept $DIR"; else rm -rf "$DIR"; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
URL="http://127.0.0.1:$PORT"
ADMIN_PASSWORD="fuzz-admin-$(python3 -c 'import secrets; print(secrets.token_hex(8))')"

# Waits (at most 30 s) until the command succeeds.
wait_for() {
  local deadline=$((SECONDS + 30))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then log "timed out waiting for: $*"; return 1; fi
    sleep 0.2
  done
}

# A JSON request to the manager; prints the answer, fails on a non-2xx status.
api() {
  local method=$1 path=$2 body=${3:-} token=${4:-$ADMIN_TOKEN}
  curl -sS --fail-with-body -X "$method" "$URL$path" -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' ${body:+--data "$body"}
}
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

log "starting a manager on $URL ($DIR)"
"$BIN" manager --data-dir "$DIR/data" --listen "127.0.0.1:$PORT" --admin-password "$ADMIN_PASSWORD" \
  --log-level warning >"$DIR/manager.log" 2>&1 &
MANAGER_PID=$!
wait_for curl -sf "$URL/readyz"

# The admin's token, through a session login (the cookie and its CSRF header).
LOGIN=$(curl -sS --fail-with-body -c "$DIR/cookies" -H 'Content-Type: application/json' \
  --data "{\"username\":\"admin\",\"password\":\"$ADMIN_PASSWORD\"}" "$URL/api/v1/auth/login")
CSRF=$(printf '%s' "$LOGIN" | field csrfToken)
ADMIN_TOKEN=$(curl -sS --fail-with-body -b "$DIR/cookies" -H "X-Klevr-CSRF: $CSRF" -H 'Content-Type: application/json' \
  --data '{"name":"fuzz-admin"}' "$URL/api/v1/tokens" | field token)

# A viewer and its token.
VIEWER_PASSWORD="fuzz-viewer-$(python3 -c 'import secrets; print(secrets.token_hex(8))')"
api POST /api/v1/users "{\"username\":\"fuzz-viewer\",\"password\":\"$VIEWER_PASSWORD\",\"role\":\"viewer\"}" >/dev/null
curl -sS --fail-with-body -c "$DIR/viewer-cookies" -H 'Content-Type: application/json' \
  --data "{\"username\":\"fuzz-viewer\",\"password\":\"$VIEWER_PASSWORD\"}" "$URL/api/v1/auth/login" >"$DIR/viewer-login.json"
VIEWER_CSRF=$(field csrfToken <"$DIR/viewer-login.json")
VIEWER_TOKEN=$(curl -sS --fail-with-body -b "$DIR/viewer-cookies" -H "X-Klevr-CSRF: $VIEWER_CSRF" \
  -H 'Content-Type: application/json' --data '{"name":"fuzz-viewer"}' "$URL/api/v1/tokens" | field token)

# A zone with an enrolled agent. The agent enrolls once and is stopped: it is offline from then on,
# so the tasks the fuzzer creates are stored but never executed on this machine.
api POST /api/v1/zones '{"name":"fuzz","description":"schemathesis"}' >/dev/null
ENROLL_KEY=$(api POST /api/v1/zones/fuzz/enroll-keys '{}' | field key)
mkdir -p "$DIR/agent"
KLEVR_ENROLL_KEY="$ENROLL_KEY" "$BIN" agent run --manager "$URL" --zone fuzz --state-dir "$DIR/agent/state" \
  --work-dir "$DIR/agent/work" --listen "127.0.0.1:$(free_port)" --log-level warning >"$DIR/agent.log" 2>&1 &
AGENT_PID=$!
wait_for test -s "$DIR/agent/state/identity.json"
kill "$AGENT_PID" && wait "$AGENT_PID" 2>/dev/null || true
AGENT_PID=
AGENT_CREDENTIAL=$(field credential <"$DIR/agent/state/identity.json")

# One schemathesis run per credential. Every check; the seed makes a finding reproducible;
# --max-examples bounds each operation. Operations the credential may not call are fuzzed too: they
# must answer a documented 403 and nothing else.
status=0
fuzz() {
  local name=$1 token=$2
  shift 2
  log "schemathesis as $name"
  # The response-time limit is above the agent sync's documented long poll (held up to about 25 s).
  # One worker: hypothesis parses lambdas with ast.parse, which is not thread-safe on CPython 3.11
  # ("AST constructor recursion depth mismatch"). The hooks leave out `follow=true` (an endless stream).
  # Run from the temp dir: schemathesis keeps its replay data in ./.schemathesis.
  if ! (cd "$DIR" && PYTHONPATH="$HOOKS_DIR" SCHEMATHESIS_HOOKS=fuzz_hooks schemathesis --no-color run "$SPEC" --url "$URL" \
    -H "Authorization: Bearer $token" --checks all \
    --max-examples "$EXAMPLES" --seed "$SEED" --generation-database none --workers 1 --request-timeout 40 \
    --max-response-time 30 \
    --report junit --report-dir "$DIR/report-$name" "$@") >"$DIR/schemathesis-$name.log" 2>&1; then
    status=1
    cat "$DIR/schemathesis-$name.log"
    log "schemathesis as $name found problems (above)"
  else
    tail -n 3 "$DIR/schemathesis-$name.log"
  fi
}
# DELETE /api/v1/tokens/{id} is fuzzed on its own, without the stateful phase: there, schemathesis
# follows GET /api/v1/tokens to the harness's own token and deletes it, and every later request of
# the run would only be a 401.
fuzz agent "$AGENT_CREDENTIAL" --include-path-regex '^/api/v1/agent/'
fuzz viewer "$VIEWER_TOKEN" --exclude-operation-id deleteToken
fuzz admin "$ADMIN_TOKEN" --exclude-operation-id deleteToken
fuzz delete-token "$VIEWER_TOKEN" --include-operation-id deleteToken --phases examples,coverage,fuzzing

if ! kill -0 "$MANAGER_PID" 2>/dev/null; then
  log "the manager died during the run"; tail -n 50 "$DIR/manager.log"; status=1
fi
if [ $status -ne 0 ]; then
  log "manager log (last 50 lines):"; tail -n 50 "$DIR/manager.log"
  exit 1
fi
log "clean"
