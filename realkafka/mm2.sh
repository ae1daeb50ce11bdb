#!/usr/bin/env bash
# MirrorMaker 2 (dedicated mode) from the same Kafka jars as brokers.sh.
#
#   mm2.sh render [OUT]      render mm2.properties.tmpl to OUT (default $RUN_DIR/mm2/mm2.properties); prints OUT
#   mm2.sh run [CONFIG]      run MM2 in the foreground (exec: the PID is the JVM's); renders CONFIG if omitted
#   mm2.sh start [CONFIG]    run MM2 in the background; PID in $RUN_DIR/mm2.pid, log in $RUN_DIR/mm2/mm2.log
#   mm2.sh stop              stop the MM2 started by `start`, by PID (SIGTERM, wait 30s, SIGKILL)
#   mm2.sh demo [N]          end to end: start brokers if needed, produce N (default 10000) records on the
#                            SOURCE as admin, mirror them with MM2, check the TARGET end offset, stop MM2
#
# render reads (defaults in brackets; bootstraps/creds default to `brokers.sh env`):
#   KMIG_REAL_SOURCE_BOOTSTRAP, KMIG_REAL_TARGET_BOOTSTRAP, KMIG_REAL_SOURCE_USER [admin],
#   KMIG_REAL_SOURCE_PASSWORD [admin-secret], KMIG_REAL_SOURCE_MECHANISM [SCRAM-SHA-512],
#   KMIG_MM2_SOURCE_SECURITY_PROTOCOL [SASL_PLAINTEXT], KMIG_MM2_TARGET_SECURITY_PROTOCOL [PLAINTEXT],
#   KMIG_MM2_TOPICS [.*] (regex list), KMIG_MM2_TASKS_MAX [1], KMIG_MM2_COMPRESSION [none],
#   KMIG_MM2_LINGER_MS [5], KMIG_MM2_REPLICATION_FACTOR [1], KMIG_MM2_SYNC_TOPIC_CONFIGS [true],
#   KMIG_MM2_REFRESH_TOPICS_SECONDS [5], KMIG_MM2_EXTRA (a properties file appended; its keys win)
# run/start read: KMIG_REAL_KAFKA_LIBS [brokers.sh libs], KMIG_MM2_HEAP [-Xms256m -Xmx1g],
#   KMIG_REAL_KAFKA_LOG_LEVEL [INFO], KMIG_REAL_RUN_DIR [${TMPDIR:-/tmp}/kmig-realkafka]
set -euo pipefail
shopt -u patsub_replacement 2>/dev/null || true

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RUN_DIR="${KMIG_REAL_RUN_DIR:-${TMPDIR:-/tmp}/kmig-realkafka}"
MM2_DIR="$RUN_DIR/mm2"
HEAP_OPTS="${KMIG_MM2_HEAP:--Xms256m -Xmx1g}"
LOG_LEVEL="${KMIG_REAL_KAFKA_LOG_LEVEL:-INFO}"

log() { printf '[mm2.sh] %s\n' "$*" >&2; }
die() { printf '[mm2.sh] ERROR: %s\n' "$*" >&2; exit 1; }

libs() {
  if [[ -n "${KMIG_REAL_KAFKA_LIBS:-}" ]]; then echo "$KMIG_REAL_KAFKA_LIBS"; return; fi
  "$SCRIPT_DIR/brokers.sh" libs
}

# Fill in missing bootstraps/creds from the running local brokers.
load_env() {
  if [[ -z "${KMIG_REAL_SOURCE_BOOTSTRAP:-}" || -z "${KMIG_REAL_TARGET_BOOTSTRAP:-}" ]]; then
    local e
    e="$(KMIG_REAL_RUN_DIR="$RUN_DIR" "$SCRIPT_DIR/brokers.sh" env)" \
      || die "no KMIG_REAL_SOURCE_BOOTSTRAP/KMIG_REAL_TARGET_BOOTSTRAP and no local brokers (run brokers.sh start)"
    eval "$e"
  fi
}

jaas_escape() { local s="$1"; s="${s//\\/\\\\}"; s="${s//\"/\\\"}"; printf '%s' "$s"; }

cmd_render() {
  local out="${1:-$MM2_DIR/mm2.properties}"
  load_env
  local -A v=(
    [SOURCE_BOOTSTRAP]="$KMIG_REAL_SOURCE_BOOTSTRAP"
    [TARGET_BOOTSTRAP]="$KMIG_REAL_TARGET_BOOTSTRAP"
    [SOURCE_USER]="$(jaas_escape "${KMIG_REAL_SOURCE_USER:-admin}")"
    [SOURCE_PASSWORD]="$(jaas_escape "${KMIG_REAL_SOURCE_PASSWORD:-admin-secret}")"
    [SOURCE_MECHANISM]="${KMIG_REAL_SOURCE_MECHANISM:-SCRAM-SHA-512}"
    [SOURCE_SECURITY_PROTOCOL]="${KMIG_MM2_SOURCE_SECURITY_PROTOCOL:-SASL_PLAINTEXT}"
    [TARGET_SECURITY_PROTOCOL]="${KMIG_MM2_TARGET_SECURITY_PROTOCOL:-PLAINTEXT}"
    [TOPICS]="${KMIG_MM2_TOPICS:-.*}"
    [TASKS_MAX]="${KMIG_MM2_TASKS_MAX:-1}"
    [COMPRESSION]="${KMIG_MM2_COMPRESSION:-none}"
    [LINGER_MS]="${KMIG_MM2_LINGER_MS:-5}"
    [REPLICATION_FACTOR]="${KMIG_MM2_REPLICATION_FACTOR:-1}"
    [SYNC_TOPIC_CONFIGS]="${KMIG_MM2_SYNC_TOPIC_CONFIGS:-true}"
    [REFRESH_TOPICS_SECONDS]="${KMIG_MM2_REFRESH_TOPICS_SECONDS:-5}"
  )
  mkdir -p "$(dirname "$out")"
  local line k tmp="$out.tmp.$$"
  : >"$tmp"
  while IFS= read -r line || [[ -n "$line" ]]; do
    for k in "${!v[@]}"; do line="${line//@$k@/${v[$k]}}"; done
    printf '%s\n' "$line" >>"$tmp"
  done <"$SCRIPT_DIR/mm2.properties.tmpl"
  if [[ -n "${KMIG_MM2_EXTRA:-}" ]]; then
    { printf '\n# ---- appended from %s\n' "$KMIG_MM2_EXTRA"; cat "$KMIG_MM2_EXTRA"; } >>"$tmp"
  fi
  if grep -n '@[A-Z_]*@' "$tmp" >&2; then rm -f "$tmp"; die "unrendered placeholders above"; fi
  mv "$tmp" "$out"
  echo "$out"
}

java_cmd() { # java_cmd CONFIG -> argv on stdout (NUL separated)
  local cfg="$1" l
  l="$(libs)"
  # shellcheck disable=SC2206
  local heap=($HEAP_OPTS)
  printf '%s\0' java "${heap[@]}" -Djava.awt.headless=true -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:+ExitOnOutOfMemoryError "-Dlog4j2.configurationFile=$SCRIPT_DIR/log4j2.properties" \
    "-Dkmig.log.level=$LOG_LEVEL" "-Dkafka.logs.dir=$MM2_DIR" \
    -cp "$l/*" org.apache.kafka.connect.mirror.MirrorMaker "$cfg"
}

cmd_run() {
  local cfg="${1:-}"
  [[ -n "$cfg" ]] || cfg="$(cmd_render)"
  [[ -f "$cfg" ]] || die "no such config: $cfg"
  local argv; mapfile -d '' -t argv < <(java_cmd "$cfg")
  mkdir -p "$MM2_DIR"
  exec "${argv[@]}"
}

pid_alive() {
  local f="$RUN_DIR/mm2.pid" pid
  [[ -f "$f" ]] || return 1
  pid="$(cat "$f")"
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  if [[ -r "/proc/$pid/cmdline" ]]; then
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "-Dkafka.logs.dir=$MM2_DIR" || return 1
  fi
}

cmd_start() {
  local cfg="${1:-}"
  pid_alive && die "MM2 already running (pid $(cat "$RUN_DIR/mm2.pid")); run: $0 stop"
  [[ -n "$cfg" ]] || cfg="$(cmd_render)"
  [[ -f "$cfg" ]] || die "no such config: $cfg"
  local argv; mapfile -d '' -t argv < <(java_cmd "$cfg")
  mkdir -p "$MM2_DIR"
  nohup "${argv[@]}" >"$MM2_DIR/mm2.log" 2>&1 </dev/null &
  local pid=$! i
  echo "$pid" >"$RUN_DIR/mm2.pid"
  # wait until the forked shell has exec'ed java (pid_alive checks the command line)
  for i in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    [[ -r "/proc/$pid/cmdline" ]] || break
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "-Dkafka.logs.dir=$MM2_DIR" && break
    sleep 0.05
  done
  log "MirrorMaker 2 started, pid $!, config $cfg, log $MM2_DIR/mm2.log"
}

cmd_stop() {
  local f="$RUN_DIR/mm2.pid" pid i
  if ! pid_alive; then rm -f "$f"; return 0; fi
  pid="$(cat "$f")"
  log "stopping MirrorMaker 2 (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then
    log "MM2 (pid $pid) did not stop in 30s; SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

# Run a Kafka tool class with a small heap and quiet logs.
tool() {
  local cls="$1"; shift
  java -Xmx256m -XX:TieredStopAtLevel=1 "-Dlog4j2.configurationFile=$SCRIPT_DIR/log4j2.properties" \
    -Dkmig.log.level=WARN -cp "$(libs)/*" "$cls" "$@"
}

cmd_demo() {
  local n="${1:-10000}" topic="kmig-mm2-demo-$(date +%s)"
  "$SCRIPT_DIR/brokers.sh" start >/dev/null
  load_env
  local admin_cfg="$MM2_DIR/demo-admin.properties"
  mkdir -p "$MM2_DIR"
  cat >"$admin_cfg" <<CFG
security.protocol=${KMIG_MM2_SOURCE_SECURITY_PROTOCOL:-SASL_PLAINTEXT}
sasl.mechanism=${KMIG_REAL_SOURCE_MECHANISM:-SCRAM-SHA-512}
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$(jaas_escape "${KMIG_REAL_SOURCE_USER:-admin}")" password="$(jaas_escape "${KMIG_REAL_SOURCE_PASSWORD:-admin-secret}")";
CFG
  log "producing $n records of 100 bytes to $topic on the SOURCE ($KMIG_REAL_SOURCE_BOOTSTRAP) as ${KMIG_REAL_SOURCE_USER:-admin}"
  tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$KMIG_REAL_SOURCE_BOOTSTRAP" \
    --command-config "$admin_cfg" --create --topic "$topic" --partitions 2 --replication-factor 1 >&2
  tool org.apache.kafka.tools.ProducerPerformance --topic "$topic" --num-records "$n" --record-size 100 \
    --throughput -1 --command-config "$admin_cfg" \
    --command-property "bootstrap.servers=$KMIG_REAL_SOURCE_BOOTSTRAP" acks=all >&2
  local cfg
  cfg="$(KMIG_MM2_TOPICS="$topic" cmd_render "$MM2_DIR/demo-mm2.properties")"
  local t0=$SECONDS
  cmd_start "$cfg"
  local total=0 deadline=$((SECONDS + ${KMIG_MM2_DEMO_TIMEOUT:-180}))
  while :; do
    if ! pid_alive; then tail -n 60 "$MM2_DIR/mm2.log" >&2; cmd_stop; die "MM2 exited"; fi
    total="$(tool org.apache.kafka.tools.GetOffsetShell --bootstrap-server "$KMIG_REAL_TARGET_BOOTSTRAP" \
      --topic "$topic" 2>/dev/null | awk -F: '{s += $NF} END {print s + 0}' || true)"
    log "target $topic end offsets sum: $total / $n"
    [[ "$total" -ge "$n" ]] && break
    if ((SECONDS >= deadline)); then
      tail -n 60 "$MM2_DIR/mm2.log" >&2; cmd_stop; die "target did not receive $n records in time"
    fi
    sleep 2
  done
  log "mirrored $n records in $((SECONDS - t0))s (including MM2 startup)"
  cmd_stop
  echo "OK: MirrorMaker 2 mirrored $n records $KMIG_REAL_SOURCE_BOOTSTRAP -> $KMIG_REAL_TARGET_BOOTSTRAP (topic $topic)"
}

cmd="${1:-}"
[[ $# -gt 0 ]] && shift
case "$cmd" in
  render) cmd_render "$@" ;;
  run) cmd_run "$@" ;;
  start) cmd_start "$@" ;;
  stop) cmd_stop ;;
  demo) cmd_demo "$@" ;;
  *) sed -n '2,/^set -euo/{/^#/p}' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
