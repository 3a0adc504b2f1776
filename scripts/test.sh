#!/usr/bin/env bash
# The one test command: installs and starts what the tests need when missing (a throwaway PostgreSQL
# cluster on a loopback port), builds, runs every suite, and exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
export SWIFT_DETERMINISTIC_HASHING=1

log() { printf '== %s\n' "$*"; }

# --- PostgreSQL: a throwaway cluster (initdb as the postgres user, loopback, fsync=off) ----------
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
if [ -z "$(pg_bin)" ]; then
  log "installing PostgreSQL"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
fi
PGBIN=$(pg_bin)
PGDIR=$(mktemp -d /tmp/klevr-pg.XXXXXX)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres:postgres "$PGDIR"
PGPORT=${KLEVR_TEST_PGPORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
cleanup() {
  as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$PGDIR"
}
trap cleanup EXIT
log "starting PostgreSQL ($PGBIN) on 127.0.0.1:$PGPORT"
as_pg "$PGBIN/initdb" -D "$PGDIR/data" -U postgres -A trust --no-sync >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/log" -w \
  -o "-p $PGPORT -k $PGDIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >/dev/null
export KLEVR_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$PGPORT/postgres"

# --- The OpenAPI document must be valid OpenAPI 3.1 ------------------------------------------------
if ! python3 -c 'import openapi_spec_validator' 2>/dev/null; then
  log "installing openapi-spec-validator"
  python3 -m pip install -q openapi-spec-validator
fi
log "validating Sources/KlevrAPI/openapi.yaml"
python3 -m openapi_spec_validator Sources/KlevrAPI/openapi.yaml
python3 -m openapi_spec_validator Sources/KlevrPeerAPI/openapi.yaml

# --- Build and test -------------------------------------------------------------------------------
log "building"
if ! swift build --build-tests >"$PGDIR/build.log" 2>&1; then
  grep -vE '^\[[0-9]+/[0-9]+\] ' "$PGDIR/build.log" | tail -n 200
  log "build failed"
  exit 1
fi
export KLEVR_BIN="$PWD/.build/debug/klevr"
# Every test deadline three times as long (KlevrTestSupport's TestTime): this runs ~80 suites at once,
# system suites starting debug-build processes, on a 2-core CI machine.
export KLEVR_TEST_TIME_SCALE="${KLEVR_TEST_TIME_SCALE:-3}"
log "running every suite (SQLite and PostgreSQL store suites, HTTP, agent, system tests)"
set +e
swift test --skip-build 2>&1 | tee "$PGDIR/test.log"
rc=${PIPESTATUS[0]}
set -e
passed=$(grep -cE '^✔ Test .* passed' "$PGDIR/test.log" || true)
failed=$(grep -cE '^✘ Test .* failed' "$PGDIR/test.log" || true)
log "tests: $passed passed, $failed failed (swift test exit $rc)"

# --- The API against its document: schemathesis, every check, as an admin, a viewer and an agent --
# (scripts/fuzz-api.sh: its own manager, temp dir and port, removed on exit; installs schemathesis.)
fuzz_api() {
  log "fuzzing the API against Sources/KlevrAPI/openapi.yaml (schemathesis)"
  bash scripts/fuzz-api.sh "$KLEVR_BIN"
}
fuzz_rc=0
fuzz_api || fuzz_rc=$?
log "schemathesis: $([ "$fuzz_rc" = 0 ] && echo clean || echo "findings (exit $fuzz_rc)")"
[ "$rc" = 0 ] && rc=$fuzz_rc

# --- The web console in headless Chromium, against a real manager and real agents -----------------
# (scripts/console-test.sh: installs Chromium, chromedriver, nodejs and selenium when missing; its own
# manager, agents, temp dir and ports, all stopped and removed on exit; screenshots under .build.)
console_rc=0
bash scripts/console-test.sh "$KLEVR_BIN" || console_rc=$?
log "console: $([ "$console_rc" = 0 ] && echo clean || echo "findings (exit $console_rc)")"
[ "$rc" = 0 ] && rc=$console_rc
exit "$rc"
