#!/usr/bin/env bash
# The web console's browser suite (Tests/browser/console_suite.py): headless Chromium against a real
# manager (SQLite, loopback, generated admin password) and real agent processes; exits non-zero on any
# failure. Installs what is missing: Debian's chromium, chromium-driver and nodejs (as root or through
# sudo) and selenium 4.51.0 from PyPI (4.52 does not install here).
#
#   scripts/console-test.sh [KLEVR_BIN]    (default: .build/debug/klevr; build first)
#
# Environment: KLEVR_CONSOLE_SHOTS (where the screenshots go, default .build/console-screenshots;
# emptied first), KLEVR_CONSOLE_KEEP=1 keeps the temp dir (manager and agent logs, agent state),
# KLEVR_CONSOLE_ONLY=step,step runs only those steps (development), KLEVR_CONSOLE_DIR serves the
# console from that folder instead of the binary's copy (development of the pages).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${1:-${KLEVR_BIN:-$PWD/.build/debug/klevr}}
SHOTS=${KLEVR_CONSOLE_SHOTS:-$PWD/.build/console-screenshots}
log() { printf '== console: %s\n' "$*"; }

if [ ! -x "$BIN" ]; then
  log "no klevr binary at $BIN (build first: swift build)"
  exit 2
fi

# --- What the suite needs ---------------------------------------------------------------------------
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi
if [ "$(python3 -c 'import selenium; print(selenium.__version__)' 2>/dev/null || true)" != 4.51.0 ]; then
  log "installing selenium 4.51.0"
  python3 -m pip install -q 'selenium==4.51.0'
fi

# --- The suite ---------------------------------------------------------------------------------------
# Its own temp dir (manager data, agent state and work dirs, logs), removed on exit; the suite stops
# the manager, the agents, the browser and the webhook receiver it started (by their pids), also on
# SIGTERM, which this trap sends it if the script itself is interrupted.
DIR=$(mktemp -d /tmp/klevr-console.XXXXXX)
SUITE_PID=
cleanup() {
  if [ -n "$SUITE_PID" ] && kill -0 "$SUITE_PID" 2>/dev/null; then
    kill -TERM "$SUITE_PID" 2>/dev/null || true
    wait "$SUITE_PID" 2>/dev/null || true
  fi
  if [ "${KLEVR_CONSOLE_KEEP:-0}" = 1 ]; then log "kept $DIR"; else rm -rf "$DIR"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

rm -rf "$SHOTS"
mkdir -p "$SHOTS"
args=(--bin "$BIN" --shots "$SHOTS" --tmp "$DIR")
[ -n "${KLEVR_CONSOLE_ONLY:-}" ] && args+=(--only "$KLEVR_CONSOLE_ONLY")
[ "${KLEVR_CONSOLE_KEEP:-0}" = 1 ] && args+=(--keep)
# Loopback only: no proxy from the environment for the suite's own requests or the browser's.
env -u http_proxy -u https_proxy -u HTTP_PROXY -u HTTPS_PROXY NO_PROXY='*' \
  python3 Tests/browser/console_suite.py "${args[@]}" &
SUITE_PID=$!
status=0
wait "$SUITE_PID" || status=$?
SUITE_PID=
log "screenshots: $SHOTS"
exit "$status"
