#!/usr/bin/env bash
# `make test`: installs what the tests need, the way .ci/run does, runs the
# whole suite, and stops every broker it started.
#
#   scripts/test.sh          set up, start the real Kafka brokers, run
#                            `make unit test-arm64 fuzz`, stop the brokers
#   scripts/test.sh setup    only the installs (steps 1-3), no brokers, no tests
#
# Steps, each idempotent (a second run only checks):
#   1. npm ci in statemachine/local: Node 22 (the node@22 package),
#      aws-local-stepfunctions and asl-validator, into
#      statemachine/local/node_modules (npm's cache: ~/.npm).
#   2. scripts/install-template-tools.sh: cfn-lint, aws-sam-cli and
#      moto[server] at pinned versions in a virtualenv under
#      $KMIG_TOOLS_DIR (default ~/.cache/kmig-tools).
#   3. realkafka/brokers.sh fetch: the Apache Kafka jars from Maven Central
#      into $KMIG_CACHE (default ~/.cache/kmig; Maven's cache: ~/.m2).
#   4. realkafka/brokers.sh start: a SOURCE and a TARGET broker on loopback,
#      or the ones already running, or the external ones given by
#      KMIG_REAL_SOURCE_BOOTSTRAP / KMIG_REAL_TARGET_BOOTSTRAP.
#   5. make unit test-arm64 fuzz.
#   6. On exit, passed, failed or interrupted: the brokers that step 4
#      started are stopped, with every spare or profile broker and MM2 the
#      tests started next to them; when they were already running, only the
#      extra brokers the tests started are stopped. KMIG_KEEP_BROKERS=1 keeps
#      them all running for the next run.
#
# A step that cannot be done for want of a tool that needs root or is not on
# the machine (npm, python3 with venv, java, mvn) prints one SKIP line saying
# how to get it, and the tests that need it skip. With KMIG_REQUIRE_TOOLS=1
# (as .ci/run sets) it is a failure instead, as are the skips in the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

MAKE="${MAKE:-make}"  # the make that runs unit, test-arm64 and fuzz
strict=0
[ "${KMIG_REQUIRE_TOOLS:-}" = 1 ] && strict=1
real_strict=$strict
[ "${KMIG_REQUIRE_REAL_KAFKA:-}" = 1 ] && real_strict=1

say() { printf '[make test] %s\n' "$*" >&2; }

# missing STRICT WHAT HOW: a tool is not there. Fails under STRICT=1, else
# prints the one SKIP line.
missing() {
  if [ "$1" = 1 ]; then
    say "FAIL $2 (required by KMIG_REQUIRE_TOOLS or KMIG_REQUIRE_REAL_KAFKA): $3"
    exit 1
  fi
  echo "SKIP $2: $3"
}

setup_npm() {
  if ! command -v npm >/dev/null 2>&1; then
    missing "$strict" "the state machine tests (Node 22, aws-local-stepfunctions)" \
      "npm not found; install Node.js 20+ with npm (Debian: apt-get install nodejs npm)"
    return 0
  fi
  local mods=statemachine/local/node_modules
  if [ -f "$mods/.package-lock.json" ] && [ ! statemachine/local/package-lock.json -nt "$mods/.package-lock.json" ]; then
    return 0
  fi
  say "npm ci --prefix statemachine/local (Node 22, aws-local-stepfunctions, asl-validator)"
  npm ci --prefix statemachine/local --no-audit --no-fund --no-update-notifier --loglevel=error >&2
}

setup_pip() {
  if ! command -v "${PYTHON:-python3}" >/dev/null 2>&1 || ! "${PYTHON:-python3}" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    missing "$strict" "the template and IAM tests (cfn-lint, sam, moto_server)" \
      "python3 with venv not found; install Python 3.9+ (Debian: apt-get install python3-venv)"
    return 0
  fi
  say "scripts/install-template-tools.sh (cfn-lint, aws-sam-cli, moto[server] in ${KMIG_TOOLS_DIR:-$HOME/.cache/kmig-tools}/venv)"
  scripts/install-template-tools.sh >/dev/null
}

# real_kafka_tools: 0 when the real-Kafka tier can run (java, and mvn or
# cached jars), else prints the SKIP line and returns 1.
real_kafka_tools() {
  if ! command -v java >/dev/null 2>&1; then
    missing "$real_strict" "the real Kafka tests" "java not found; install Java 17+ (Debian: apt-get install openjdk-17-jre-headless)"
    return 1
  fi
  if ! command -v mvn >/dev/null 2>&1 && ! realkafka/brokers.sh libs >/dev/null 2>&1; then
    missing "$real_strict" "the real Kafka tests" "mvn not found and the Kafka jars are not cached; install Maven 3 (Debian: apt-get install maven)"
    return 1
  fi
  return 0
}

setup_jars() {
  if real_kafka_tools; then
    realkafka/brokers.sh fetch
  fi
}

setup() {
  setup_npm
  setup_pip
  setup_jars
}

if [ "${1:-}" = setup ]; then
  setup
  exit 0
fi
[ $# -eq 0 ] || { echo "usage: scripts/test.sh [setup]" >&2; exit 2; }

t0=$SECONDS
setup
export PATH="${KMIG_TOOLS_DIR:-$HOME/.cache/kmig-tools}/venv/bin:$PATH"

# The brokers brokers.sh manages besides SOURCE and TARGET, which the tests
# start on demand (brokers.sh start-spare, start-profile; mm2.sh start).
EXTRA_BROKERS="spare open no-authorizer private-ca"
running() { # the names brokers.sh status reports as running
  { realkafka/brokers.sh status 2>/dev/null || true; } | sed -n 's/^\([a-z0-9-]*\): running.*/\1/p' | tr '\n' ' '
}

brokers=none  # what brokers.sh start printed: started, running or external
before=" "
stop_ours() {
  local rc=$?
  trap - EXIT INT TERM
  if [ "$brokers" = none ] || [ "$brokers" = external ]; then
    exit "$rc"
  fi
  if [ "${KMIG_KEEP_BROKERS:-}" = 1 ]; then
    say "KMIG_KEEP_BROKERS=1: leaving the brokers running (stop them with realkafka/brokers.sh stop)"
    exit "$rc"
  fi
  if [ "$brokers" = started ]; then
    say "stopping the brokers this run started"
    realkafka/brokers.sh stop || true
  else
    local now n
    now=" $(running) "
    for n in $EXTRA_BROKERS; do
      if [[ "$now" == *" $n "* && "$before" != *" $n "* ]]; then
        realkafka/brokers.sh stop-broker "$n" || true
      fi
    done
    if [[ "$now" == *" mm2 "* && "$before" != *" mm2 "* ]]; then
      KMIG_REAL_RUN_DIR="${KMIG_REAL_RUN_DIR:-${TMPDIR:-/tmp}/kmig-realkafka}" realkafka/mm2.sh stop >/dev/null 2>&1 || true
    fi
  fi
  exit "$rc"
}
trap stop_ours EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if real_kafka_tools >/dev/null; then
  before=" $(running) "
  brokers="$(realkafka/brokers.sh start)"
fi

"$MAKE" --no-print-directory unit test-arm64 fuzz
say "passed in $((SECONDS - t0)) s"
