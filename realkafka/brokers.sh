#!/usr/bin/env bash
# Real Apache Kafka tier: two single-node KRaft brokers (SOURCE with SASL/SCRAM + StandardAuthorizer,
# TARGET plaintext) on loopback, from the Maven Central jars. See realkafka/README.md.
#
#   brokers.sh fetch    download the jars (idempotent; cached under $KMIG_CACHE)
#   brokers.sh start    fetch if needed, format + start SOURCE and TARGET, wait until ready, add app ACLs
#                       (idempotent: does nothing if they already run; does nothing at all when
#                       KMIG_REAL_SOURCE_BOOTSTRAP and KMIG_REAL_TARGET_BOOTSTRAP are set). Prints one
#                       word on stdout: started, running or external (progress goes to stderr).
#   brokers.sh stop     stop the brokers (and an MM2 started by mm2.sh start) by recorded PID
#   brokers.sh start-spare    start (or reuse) a third broker, SPARE: plaintext like TARGET, its own config
#                       and data dir, for tests that stop and restart "the target" without disturbing
#                       the shared TARGET. Needs the brokers started. Prints its host:port on stdout.
#   brokers.sh start-profile PROFILE   start (or reuse) the source of a source profile as an extra broker
#                       next to SOURCE and TARGET (TARGET stays the shared target), with its own config,
#                       ports, data dir and PID file, same users as SOURCE. PROFILE: open (StandardAuthorizer,
#                       allow.everyone.if.no.acl.found=true, the app user holds no ACLs) or no-authorizer
#                       (SCRAM, no authorizer.class.name); deny-by-default is SOURCE itself; private-ca
#                       (SCRAM over TLS, SASL_SSL, no authorizer, with the certificate and key a caller
#                       wrote to $RUN_DIR/private-ca.tls: see start-profile below). Needs the brokers
#                       started. Prints the profile source's host:port on stdout.
#   brokers.sh stop-broker NAME [--kill]   stop one broker (source, target, spare, open, no-authorizer or
#                       private-ca) by recorded PID, keeping its config and data (SIGTERM, 30 s, then
#                       SIGKILL; --kill: SIGKILL at once)
#   brokers.sh start-broker NAME           start it again with the same config and data dir, wait until
#                       ready. Stopping the shared source or target breaks other users of the brokers.
#   brokers.sh status   print what runs; exit 0 if both brokers run, 3 if not
#   brokers.sh env      print shell exports for the running (or externally given) brokers
#   brokers.sh libs     print the jar directory (fetching first if needed)
#
# Environment (all optional):
#   KMIG_KAFKA_VERSION        Kafka version of the jars (default 4.3.1)
#   KMIG_CACHE                cache root (default $HOME/.cache/kmig); jars go to $KMIG_CACHE/kafka-<v>/libs
#   KMIG_REAL_RUN_DIR         run directory for configs, data, logs, PIDs (default ${TMPDIR:-/tmp}/kmig-realkafka)
#   KMIG_REAL_KAFKA_HEAP      broker JVM heap options (default "-Xms256m -Xmx1g")
#   KMIG_REAL_START_TIMEOUT   seconds to wait for each broker (default 180)
#   KMIG_REAL_KAFKA_LOG_LEVEL root log level of the JVMs (default INFO)
#   KMIG_REAL_SOURCE_PORT / KMIG_REAL_TARGET_PORT  fixed client ports (default: free ports picked at start)
#   KMIG_REAL_SOURCE_BOOTSTRAP / KMIG_REAL_TARGET_BOOTSTRAP  use these brokers instead; start does nothing
#   KMIG_REAL_SOURCE_OPEN_BOOTSTRAP / KMIG_REAL_SOURCE_NOAUTH_BOOTSTRAP / KMIG_REAL_SOURCE_PRIVATE_CA_BOOTSTRAP
#                             with those: the profile sources (start-profile prints them, env echoes them;
#                             nothing is started); KMIG_REAL_SOURCE_PRIVATE_CA_FILE: the PEM file of the CA
#                             that signed the private-ca source's certificate
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KAFKA_VERSION="${KMIG_KAFKA_VERSION:-4.3.1}"
CACHE_ROOT="${KMIG_CACHE:-${HOME:-/tmp}/.cache/kmig}"
KAFKA_HOME_DIR="$CACHE_ROOT/kafka-$KAFKA_VERSION"
LIBS="$KAFKA_HOME_DIR/libs"
RUN_DIR="${KMIG_REAL_RUN_DIR:-${TMPDIR:-/tmp}/kmig-realkafka}"
HEAP_OPTS="${KMIG_REAL_KAFKA_HEAP:-${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g}}"
START_TIMEOUT="${KMIG_REAL_START_TIMEOUT:-180}"
LOG_LEVEL="${KMIG_REAL_KAFKA_LOG_LEVEL:-INFO}"

ADMIN_USER=admin
ADMIN_PASSWORD=admin-secret
APP_USER=app
APP_PASSWORD=app-secret
MECHANISM=SCRAM-SHA-512

log() { printf '[brokers.sh] %s\n' "$*" >&2; }
die() { printf '[brokers.sh] ERROR: %s\n' "$*" >&2; exit 1; }

# External brokers: both bootstraps given by the user. Exports printed by `env` carry KMIG_REAL_MANAGED=1
# so that a shell which eval'ed them still lets start/stop manage the local brokers.
external_mode() {
  [[ -n "${KMIG_REAL_SOURCE_BOOTSTRAP:-}" && -n "${KMIG_REAL_TARGET_BOOTSTRAP:-}" && "${KMIG_REAL_MANAGED:-}" != 1 ]]
}

need_java() {
  command -v java >/dev/null 2>&1 || die "java not found on PATH (Java 17+ is needed for Kafka 4.x brokers)"
}

# Common JVM options for every Kafka JVM we start.
jvm_opts() { # jvm_opts [LEVEL]
  printf '%s\n' -Djava.awt.headless=true -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:+ExitOnOutOfMemoryError \
    "-Dlog4j2.configurationFile=$SCRIPT_DIR/log4j2.properties" "-Dkmig.log.level=${1:-$LOG_LEVEL}"
}

# Run a Kafka tool class in the foreground with a small heap. Usage: run_tool CLASS ARGS...
run_tool() {
  local cls="$1"; shift
  local opts; mapfile -t opts < <(jvm_opts "${KMIG_REAL_TOOL_LOG_LEVEL:-WARN}")
  java -Xmx256m -XX:TieredStopAtLevel=1 "${opts[@]}" -cp "$LIBS/*" "$cls" "$@"
}

# ---------------------------------------------------------------------------------------------------
# fetch
# ---------------------------------------------------------------------------------------------------
cmd_fetch() {
  if [[ -f "$LIBS/.complete" ]]; then
    return 0
  fi
  need_java
  command -v mvn >/dev/null 2>&1 || die "mvn not found on PATH and $LIBS is not cached yet (Maven 3 is needed once to fetch the Kafka jars)"
  mkdir -p "$KAFKA_HOME_DIR"
  # Serialise concurrent fetches (e.g. several test binaries at once).
  exec 8>"$KAFKA_HOME_DIR/.fetch.lock"
  flock 8
  if [[ -f "$LIBS/.complete" ]]; then
    flock -u 8; return 0
  fi
  local tmp="$KAFKA_HOME_DIR/libs.tmp.$$"
  rm -rf "$tmp"
  log "fetching Apache Kafka $KAFKA_VERSION jars (broker, tools, MirrorMaker 2) into $LIBS"
  local t0=$SECONDS
  # shellcheck disable=SC2086
  if ! mvn -q -B -Dstyle.color=never ${KMIG_MAVEN_ARGS:-} -f "$SCRIPT_DIR/pom.xml" -Dkafka.version="$KAFKA_VERSION" \
      dependency:copy-dependencies -DoutputDirectory="$tmp" -DincludeScope=runtime \
      >"$KAFKA_HOME_DIR/fetch.log" 2>&1; then
    cat "$KAFKA_HOME_DIR/fetch.log" >&2
    rm -rf "$tmp"
    die "maven could not fetch the Kafka $KAFKA_VERSION jars (see above; is Maven Central reachable?)"
  fi
  ls "$tmp"/kafka_2.13-*.jar "$tmp"/connect-mirror-[0-9]*.jar >/dev/null 2>&1 \
    || { rm -rf "$tmp"; die "fetched jar set is incomplete (no kafka_2.13 or connect-mirror jar in $tmp)"; }
  rm -rf "$LIBS"
  mv "$tmp" "$LIBS"
  echo "$KAFKA_VERSION" >"$LIBS/.complete"
  log "fetched $(ls "$LIBS"/*.jar | wc -l) jars in $((SECONDS - t0))s"
  flock -u 8
}

# ---------------------------------------------------------------------------------------------------
# helpers for start/stop/status
# ---------------------------------------------------------------------------------------------------
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# pick_port: a port nobody listens on, from 20000-32000 (below the Linux ephemeral range), not in $USED_PORTS
USED_PORTS=" "
pick_port() {
  local p i
  for i in $(seq 1 200); do
    p=$((20000 + RANDOM % 12000))
    [[ "$USED_PORTS" == *" $p "* ]] && continue
    if ! port_in_use "$p"; then
      USED_PORTS+="$p "
      echo "$p"; return 0
    fi
  done
  die "could not find a free port"
}

# pid_alive NAME: the PID recorded for NAME runs and is one of ours (command line mentions our run dir)
pid_alive() {
  local f="$RUN_DIR/$1.pid" pid
  [[ -f "$f" ]] || return 1
  pid="$(cat "$f")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  # guard against PID reuse: the process must be a java started with a file from our run dir
  if [[ -r "/proc/$pid/cmdline" ]]; then
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$RUN_DIR/" || return 1
  fi
  return 0
}

wait_gone() { # wait_gone PID TRIES INTERVAL: until PID is gone or TRIES run out
  local i
  for i in $(seq 1 "$2"); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep "$3"
  done
}

stop_pid() { # stop_pid NAME [KILL]
  local name="$1" f="$RUN_DIR/$1.pid" pid
  if ! pid_alive "$name"; then
    rm -f "$f"; return 0
  fi
  pid="$(cat "$f")"
  if [[ "${2:-}" == KILL ]]; then
    log "killing $name (pid $pid, SIGKILL)"
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" 100 0.1
    rm -f "$f"
    return 0
  fi
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  wait_gone "$pid" 60 0.5
  if kill -0 "$pid" 2>/dev/null; then
    log "$name (pid $pid) did not stop in 30s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
  fi
  rm -f "$f"
}

cluster_id() { # a random Kafka Uuid: 16 random bytes, base64url without padding
  local id
  while :; do
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    [[ "$id" == -* ]] || { echo "$id"; return; }  # avoid a leading '-' that looks like an option
  done
}

# The properties every broker here shares.
common_props() {
  cat <<EOF
process.roles=broker,controller
node.id=1
controller.listener.names=CONTROLLER
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=5
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.retention.hours=24
delete.topic.enable=true
EOF
}

# source_config PROFILE PORT CPORT NAME: the server.properties, on stdout, of a source broker of profile
# deny-by-default (SOURCE), open or no-authorizer, whose files live in $RUN_DIR/NAME. Every profile has
# the same SASL_PLAINTEXT SCRAM listener and users; they differ only in the authorizer settings.
source_config() {
  local profile="$1" sp="$2" scp="$3" name="$4" what authz=""
  case "$profile" in
    deny-by-default)
      what="SOURCE: SASL_PLAINTEXT with SCRAM-SHA-512/256, StandardAuthorizer"
      authz="allow.everyone.if.no.acl.found=false" ;;
    open)
      what="OPEN (source profile open): SASL_PLAINTEXT with SCRAM-SHA-512/256, StandardAuthorizer, everyone allowed where no ACL matches"
      authz="allow.everyone.if.no.acl.found=true" ;;
    no-authorizer)
      what="NO-AUTHORIZER (source profile no-authorizer): SASL_PLAINTEXT with SCRAM-SHA-512/256, no authorizer" ;;
    private-ca)
      private_ca_config "$sp" "$scp" "$name"
      return ;;
    *) die "unknown source profile '$profile' (deny-by-default, open, no-authorizer or private-ca)" ;;
  esac
  cat <<EOF
# $what. Generated by brokers.sh.
$(common_props)
$(scram_listener SASL_PLAINTEXT "$sp" "$scp")
EOF
  if [[ -n "$authz" ]]; then
    cat <<EOF
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
# admin: the operator / migrator identity. ANONYMOUS: the PLAINTEXT controller listener (broker->controller
# in this combined node; SCRAM cannot be used on a KRaft controller listener). It listens on loopback only
# and is not advertised to clients.
super.users=User:$ADMIN_USER;User:ANONYMOUS
$authz
EOF
  fi
  echo "log.dirs=$RUN_DIR/$name/data"
}

# scram_listener PROTOCOL PORT CPORT: a combined KRaft node's client and inter-broker listener (PROTOCOL
# SASL_PLAINTEXT or SASL_SSL on PORT, SCRAM-SHA-512/256 with the admin as the inter-broker user) and its
# PLAINTEXT controller listener on CPORT.
scram_listener() {
  local proto="$1" sp="$2" scp="$3" lower
  lower=$(printf '%s' "$proto" | tr '[:upper:]' '[:lower:]')
  cat <<EOF
controller.quorum.voters=1@127.0.0.1:$scp
listeners=$proto://127.0.0.1:$sp,CONTROLLER://127.0.0.1:$scp
advertised.listeners=$proto://127.0.0.1:$sp
listener.security.protocol.map=CONTROLLER:PLAINTEXT,$proto:$proto
inter.broker.listener.name=$proto
sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.$lower.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$ADMIN_USER" password="$ADMIN_PASSWORD";
listener.name.$lower.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$ADMIN_USER" password="$ADMIN_PASSWORD";
EOF
}

# The private-ca profile's certificate material, written by its caller (realkafka.StartPrivateCA makes a
# CA at run time with Go's crypto/x509): ca.pem, the CA certificate (the truststore of the broker's own
# inter-broker client), and broker.pem, the broker's unencrypted PKCS#8 private key followed by its
# certificate chain (the PEM key store). They outlive the broker, so a restart keeps its certificate.
PRIVATE_CA_TLS_DIR="$RUN_DIR/private-ca.tls"

# private_ca_config PORT CPORT NAME: the private-ca source. SASL_SSL with SCRAM-SHA-512/256 on a listener
# whose certificate (for 127.0.0.1) a private CA signed, PEM key and trust stores (Kafka's
# ssl.keystore.type=PEM / ssl.truststore.type=PEM), no authorizer. The broker talks to itself over the same
# listener, so its inter-broker client verifies the certificate against the CA too.
private_ca_config() {
  local sp="$1" scp="$2" name="$3"
  cat <<EOF
# PRIVATE-CA (source profile private-ca): SASL_SSL with SCRAM-SHA-512/256, a certificate signed by a private
# CA, no authorizer. Generated by brokers.sh.
$(common_props)
$(scram_listener SASL_SSL "$sp" "$scp")
ssl.keystore.type=PEM
ssl.keystore.location=$PRIVATE_CA_TLS_DIR/broker.pem
ssl.truststore.type=PEM
ssl.truststore.location=$PRIVATE_CA_TLS_DIR/ca.pem
ssl.endpoint.identification.algorithm=https
ssl.client.auth=none
log.dirs=$RUN_DIR/$name/data
EOF
}

write_configs() { # write_configs SRC_PORT SRC_CPORT TGT_PORT TGT_CPORT
  local sp="$1" scp="$2" tp="$3" tcp="$4"
  mkdir -p "$RUN_DIR/source/data" "$RUN_DIR/target/data"

  source_config deny-by-default "$sp" "$scp" source >"$RUN_DIR/source/server.properties"

  cat >"$RUN_DIR/target/server.properties" <<EOF
# TARGET: PLAINTEXT, no authorizer. Generated by brokers.sh.
$(common_props)
controller.quorum.voters=1@127.0.0.1:$tcp
listeners=PLAINTEXT://127.0.0.1:$tp,CONTROLLER://127.0.0.1:$tcp
advertised.listeners=PLAINTEXT://127.0.0.1:$tp
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$RUN_DIR/target/data
EOF

  cat >"$RUN_DIR/admin.properties" <<EOF
# Client config for the SOURCE super user (kafka tools: --command-config / --producer.config / ...)
security.protocol=SASL_PLAINTEXT
sasl.mechanism=$MECHANISM
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$ADMIN_USER" password="$ADMIN_PASSWORD";
EOF
  cat >"$RUN_DIR/app.properties" <<EOF
# Client config for the SOURCE application user (ACL-limited)
security.protocol=SASL_PLAINTEXT
sasl.mechanism=$MECHANISM
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$APP_USER" password="$APP_PASSWORD";
EOF

  cat >"$RUN_DIR/state.env" <<EOF
SOURCE_PORT=$sp
SOURCE_CONTROLLER_PORT=$scp
TARGET_PORT=$tp
TARGET_CONTROLLER_PORT=$tcp
KAFKA_VERSION=$KAFKA_VERSION
LIBS=$LIBS
EOF
}

# scram_args: the StorageTool format arguments that create the SCRAM users (one per line), the same on
# every source broker.
scram_args() {
  local u
  for u in "$ADMIN_USER=$ADMIN_PASSWORD" "$APP_USER=$APP_PASSWORD"; do
    printf '%s\n' --add-scram "SCRAM-SHA-512=[name=${u%%=*},password=${u#*=}]" \
      --add-scram "SCRAM-SHA-256=[name=${u%%=*},password=${u#*=}]"
  done
}

format_storage() { # format_storage NAME [extra args...]
  local name="$1"; shift
  run_tool kafka.tools.StorageTool format --ignore-formatted -t "$(cluster_id)" \
    -c "$RUN_DIR/$name/server.properties" "$@" >"$RUN_DIR/$name/format.log" 2>&1 \
    || { cat "$RUN_DIR/$name/format.log" >&2; die "formatting $name storage failed"; }
}

launch() { # launch NAME
  local name="$1" opts
  mapfile -t opts < <(jvm_opts)
  # shellcheck disable=SC2086
  nohup java $HEAP_OPTS "${opts[@]}" -Dkafka.logs.dir="$RUN_DIR/$name" \
    -cp "$LIBS/*" kafka.Kafka "$RUN_DIR/$name/server.properties" \
    >"$RUN_DIR/$name/broker.log" 2>&1 </dev/null 8>&- 9>&- &
  local pid=$!
  echo "$pid" >"$RUN_DIR/$name.pid"
  wait_exec "$pid"
}

# wait_exec PID: wait until the forked shell has exec'ed java (so pid_alive's command line check holds)
wait_exec() {
  local i
  for i in $(seq 1 100); do
    kill -0 "$1" 2>/dev/null || return 0
    [[ -r "/proc/$1/cmdline" ]] || return 0
    tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF -- "$RUN_DIR/" && return 0
    sleep 0.05
  done
}

wait_ready() { # wait_ready NAME PORT
  local name="$1" port="$2" deadline=$((SECONDS + START_TIMEOUT))
  while :; do
    if ! pid_alive "$name"; then
      log "$name broker exited during startup; last lines of $RUN_DIR/$name/broker.log:"
      tail -n 40 "$RUN_DIR/$name/broker.log" >&2 || true
      return 1
    fi
    if grep -q "Kafka Server started" "$RUN_DIR/$name/broker.log" 2>/dev/null && port_in_use "$port"; then
      return 0
    fi
    if ((SECONDS >= deadline)); then
      log "$name broker not ready after ${START_TIMEOUT}s; last lines of $RUN_DIR/$name/broker.log:"
      tail -n 40 "$RUN_DIR/$name/broker.log" >&2 || true
      return 1
    fi
    sleep 0.5
  done
}

add_app_acls() { # ALLOW for User:app: topic READ/WRITE/DESCRIBE/CREATE on *, group READ/DESCRIBE on *
  local bs="127.0.0.1:$1"
  run_tool org.apache.kafka.tools.AclCommand --bootstrap-server "$bs" --command-config "$RUN_DIR/admin.properties" \
    --add --allow-principal "User:$APP_USER" --allow-host '*' \
    --operation Read --operation Write --operation Describe --operation Create --topic '*' \
    >"$RUN_DIR/source/acls-topic.log" 2>&1 &
  local p1=$!
  run_tool org.apache.kafka.tools.AclCommand --bootstrap-server "$bs" --command-config "$RUN_DIR/admin.properties" \
    --add --allow-principal "User:$APP_USER" --allow-host '*' \
    --operation Read --operation Describe --group '*' \
    >"$RUN_DIR/source/acls-group.log" 2>&1 &
  local p2=$! rc=0
  wait "$p1" || { rc=1; cat "$RUN_DIR/source/acls-topic.log" >&2; }
  wait "$p2" || { rc=1; cat "$RUN_DIR/source/acls-group.log" >&2; }
  ((rc == 0)) || return 1
}

# ---------------------------------------------------------------------------------------------------
# start / stop / status / env
# ---------------------------------------------------------------------------------------------------
cmd_start() {
  if external_mode; then
    log "KMIG_REAL_SOURCE_BOOTSTRAP/KMIG_REAL_TARGET_BOOTSTRAP are set: using $KMIG_REAL_SOURCE_BOOTSTRAP and $KMIG_REAL_TARGET_BOOTSTRAP, starting nothing"
    echo external
    return 0
  fi
  need_java
  mkdir -p "$RUN_DIR"
  exec 9>"$RUN_DIR/.start.lock"
  flock 9
  if pid_alive source && pid_alive target && [[ -f "$RUN_DIR/ready" ]]; then
    log "already running (source 127.0.0.1:$(state SOURCE_PORT), target 127.0.0.1:$(state TARGET_PORT))"
    echo running
    return 0
  fi
  # half-started or stale: clean up what we own, then start afresh
  stop_pid source; stop_pid target; stop_pid spare
  for n in $PROFILE_BROKERS; do stop_pid "$n"; rm -rf "${RUN_DIR:?}/$n"; done
  rm -rf "$RUN_DIR/source" "$RUN_DIR/target" "$RUN_DIR/spare" "$RUN_DIR/ready" "$RUN_DIR/state.env"

  cmd_fetch
  local t0=$SECONDS
  local sp="${KMIG_REAL_SOURCE_PORT:-}" tp="${KMIG_REAL_TARGET_PORT:-}"
  [[ -n "$sp" ]] && USED_PORTS+="$sp "
  [[ -n "$tp" ]] && USED_PORTS+="$tp "
  [[ -n "$sp" ]] || sp="$(pick_port)"
  [[ -n "$tp" ]] || tp="$(pick_port)"
  local scp tcp
  scp="$(pick_port)"; tcp="$(pick_port)"
  for p in "$sp" "$tp"; do port_in_use "$p" && die "port $p is already in use"; done
  write_configs "$sp" "$scp" "$tp" "$tcp"

  log "formatting storage (Kafka $KAFKA_VERSION) in $RUN_DIR"
  local scram; mapfile -t scram < <(scram_args)
  format_storage source "${scram[@]}" &
  local f1=$!
  format_storage target &
  local f2=$!
  wait "$f1" || die "formatting source failed"
  wait "$f2" || die "formatting target failed"

  log "starting SOURCE on 127.0.0.1:$sp (SASL_PLAINTEXT/SCRAM) and TARGET on 127.0.0.1:$tp (PLAINTEXT)"
  launch source
  launch target
  local ok=1
  wait_ready source "$sp" || ok=0
  if ((ok)); then wait_ready target "$tp" || ok=0; fi
  if ((!ok)); then
    stop_pid source; stop_pid target
    die "brokers did not start (logs in $RUN_DIR/{source,target}/broker.log)"
  fi
  log "brokers up after $((SECONDS - t0))s; adding ACLs for User:$APP_USER"
  if ! add_app_acls "$sp"; then
    stop_pid source; stop_pid target
    die "could not create the ACLs for User:$APP_USER on the source"
  fi
  date +%s >"$RUN_DIR/ready"
  log "ready in $((SECONDS - t0))s. Run: eval \"\$($0 env)\""
  echo started
}

state() { # state KEY -> value from state.env
  [[ -f "$RUN_DIR/state.env" ]] || return 1
  sed -n "s/^$1=//p" "$RUN_DIR/state.env"
}

cmd_stop() {
  if [[ -x "$SCRIPT_DIR/mm2.sh" ]]; then
    KMIG_REAL_RUN_DIR="$RUN_DIR" "$SCRIPT_DIR/mm2.sh" stop >/dev/null 2>&1 || true
  fi
  stop_pid source &
  stop_pid target &
  stop_pid spare &
  local n
  for n in $PROFILE_BROKERS; do stop_pid "$n" & done
  wait
  rm -f "$RUN_DIR/ready"
  if [[ "${1:-}" == "--clean" ]]; then
    rm -rf "$RUN_DIR"
    log "removed $RUN_DIR"
  fi
}

cmd_status() {
  if external_mode; then
    echo "external: source=$KMIG_REAL_SOURCE_BOOTSTRAP target=$KMIG_REAL_TARGET_BOOTSTRAP"
    return 0
  fi
  local rc=0 n
  for n in source target; do
    if pid_alive "$n"; then
      echo "$n: running pid $(cat "$RUN_DIR/$n.pid") on 127.0.0.1:$(state "$(port_key "$n")") (log $RUN_DIR/$n/broker.log)"
    else
      echo "$n: not running"; rc=3
    fi
  done
  for n in spare $PROFILE_BROKERS; do
    if pid_alive "$n"; then
      echo "$n: running pid $(cat "$RUN_DIR/$n.pid") on 127.0.0.1:$(state "$(port_key "$n")") (log $RUN_DIR/$n/broker.log)"
    fi
  done
  if [[ -f "$RUN_DIR/mm2.pid" ]] && pid_alive mm2; then
    echo "mm2: running pid $(cat "$RUN_DIR/mm2.pid") (log $RUN_DIR/mm2/mm2.log)"
  fi
  [[ $rc == 0 && ! -f "$RUN_DIR/ready" ]] && { echo "(started but not marked ready)"; rc=3; }
  return $rc
}

# start-spare: a third plaintext broker, like TARGET, in $RUN_DIR/spare (ports recorded in state.env).
cmd_start_spare() {
  external_mode && die "external brokers (KMIG_REAL_*_BOOTSTRAP) are in use: no spare broker to start"
  need_java
  exec 9>"$RUN_DIR/.start.lock"
  flock 9
  pid_alive source && pid_alive target && [[ -f "$RUN_DIR/ready" ]] || die "brokers are not running (run: $0 start)"
  local port cport
  if pid_alive spare && [[ -f "$RUN_DIR/spare/ready" ]]; then
    echo "127.0.0.1:$(state SPARE_PORT)"
    return 0
  fi
  stop_pid spare
  rm -rf "$RUN_DIR/spare"
  sed -i '/^SPARE_/d' "$RUN_DIR/state.env"
  USED_PORTS+="$(state SOURCE_PORT) $(state SOURCE_CONTROLLER_PORT) $(state TARGET_PORT) $(state TARGET_CONTROLLER_PORT) "
  port="$(pick_port)"; cport="$(pick_port)"
  mkdir -p "$RUN_DIR/spare/data"
  # TARGET's config with the spare's ports and data dir.
  sed -e "s#^controller.quorum.voters=.*#controller.quorum.voters=1@127.0.0.1:$cport#" \
      -e "s#^listeners=.*#listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport#" \
      -e "s#^advertised.listeners=.*#advertised.listeners=PLAINTEXT://127.0.0.1:$port#" \
      -e "s#^log.dirs=.*#log.dirs=$RUN_DIR/spare/data#" \
      -e "s#^\# TARGET:#\# SPARE (a restartable target):#" \
      "$RUN_DIR/target/server.properties" >"$RUN_DIR/spare/server.properties"
  # After a SIGKILL the restarted broker must wait out its old registration's session: keep it short.
  printf 'broker.session.timeout.ms=3000\nbroker.heartbeat.interval.ms=500\n' >>"$RUN_DIR/spare/server.properties"
  printf 'SPARE_PORT=%s\nSPARE_CONTROLLER_PORT=%s\n' "$port" "$cport" >>"$RUN_DIR/state.env"
  format_storage spare
  log "starting SPARE on 127.0.0.1:$port (PLAINTEXT)"
  launch spare
  wait_ready spare "$port" || { stop_pid spare; die "spare broker did not start (log $RUN_DIR/spare/broker.log)"; }
  touch "$RUN_DIR/spare/ready"
  echo "127.0.0.1:$port"
}

# The extra source brokers of start-profile, each in $RUN_DIR/NAME with NAME.pid: one per source profile
# other than deny-by-default (which is SOURCE).
PROFILE_BROKERS="open no-authorizer private-ca"

port_key() { # port_key NAME: the state.env key of a broker's client port (its controller port: *_CONTROLLER_PORT)
  case "$1" in
    no-authorizer) echo NOAUTH_PORT ;;
    private-ca) echo PRIVATE_CA_PORT ;;
    *) echo "$(echo "$1" | tr a-z A-Z)_PORT" ;;
  esac
}

# start-profile PROFILE: the source of a source profile, as an extra broker next to SOURCE and TARGET, with
# its own config, ports and data dir in $RUN_DIR/PROFILE and the same SCRAM users as SOURCE. open gets no
# ACLs at all (the app user works only because the cluster is open). private-ca needs ca.pem and broker.pem
# in $PRIVATE_CA_TLS_DIR; a running private-ca broker older than broker.pem is restarted with the new one.
# Prints its host:port.
cmd_start_profile() {
  local profile="${1:-}"
  case "$profile" in
    deny-by-default|open|no-authorizer|private-ca) ;;
    *) die "unknown source profile '$profile' (deny-by-default, open, no-authorizer or private-ca)" ;;
  esac
  if external_mode; then
    local given
    case "$profile" in
      deny-by-default) given="$KMIG_REAL_SOURCE_BOOTSTRAP" ;;
      open) given="${KMIG_REAL_SOURCE_OPEN_BOOTSTRAP:-}" ;;
      no-authorizer) given="${KMIG_REAL_SOURCE_NOAUTH_BOOTSTRAP:-}" ;;
      private-ca) given="${KMIG_REAL_SOURCE_PRIVATE_CA_BOOTSTRAP:-}" ;;
    esac
    [[ -n "$given" ]] || die "external brokers (KMIG_REAL_*_BOOTSTRAP) are in use and no bootstrap is given for profile $profile ($(port_key "$profile" | sed 's/_PORT$//; s/^/KMIG_REAL_SOURCE_/')_BOOTSTRAP)"
    echo "$given"
    return 0
  fi
  need_java
  exec 9>"$RUN_DIR/.start.lock"
  flock 9
  pid_alive source && pid_alive target && [[ -f "$RUN_DIR/ready" ]] || die "brokers are not running (run: $0 start)"
  if [[ "$profile" == deny-by-default ]]; then
    echo "127.0.0.1:$(state SOURCE_PORT)"
    return 0
  fi
  local name="$profile" key port cport
  key="$(port_key "$name")"
  port="$(state "$key" || true)"
  if [[ "$profile" == private-ca ]]; then
    [[ -s "$PRIVATE_CA_TLS_DIR/ca.pem" && -s "$PRIVATE_CA_TLS_DIR/broker.pem" ]] \
      || die "profile private-ca needs ca.pem and broker.pem in $PRIVATE_CA_TLS_DIR (realkafka.StartPrivateCA writes them)"
  fi
  if pid_alive "$name" && [[ -f "$RUN_DIR/$name/ready" && -n "$port" ]] \
      && ! [[ "$profile" == private-ca && "$PRIVATE_CA_TLS_DIR/broker.pem" -nt "$RUN_DIR/$name/ready" ]]; then
    echo "127.0.0.1:$port"
    return 0
  fi
  stop_pid "$name"
  rm -rf "${RUN_DIR:?}/$name"
  sed -i "/^${key%_PORT}_/d" "$RUN_DIR/state.env"
  local k
  for k in $(sed -n 's/^\([A-Z_]*PORT\)=.*/\1/p' "$RUN_DIR/state.env"); do USED_PORTS+="$(state "$k") "; done
  port="$(pick_port)"; cport="$(pick_port)"
  mkdir -p "$RUN_DIR/$name/data"
  source_config "$profile" "$port" "$cport" "$name" >"$RUN_DIR/$name/server.properties"
  printf '%s=%s\n%s=%s\n' "$key" "$port" "${key%_PORT}_CONTROLLER_PORT" "$cport" >>"$RUN_DIR/state.env"
  local scram; mapfile -t scram < <(scram_args)
  format_storage "$name" "${scram[@]}"
  local proto=SASL_PLAINTEXT
  [[ "$profile" == private-ca ]] && proto=SASL_SSL
  log "starting source profile $profile on 127.0.0.1:$port ($proto/SCRAM)"
  local t0=$SECONDS
  launch "$name"
  wait_ready "$name" "$port" || { stop_pid "$name"; die "$name broker did not start (log $RUN_DIR/$name/broker.log)"; }
  touch "$RUN_DIR/$name/ready"
  log "source profile $profile ready in $((SECONDS - t0))s"
  echo "127.0.0.1:$port"
}

broker_name() { # broker_name NAME: validate
  case "${1:-}" in
    source|target|spare|open|no-authorizer|private-ca) ;;
    *) die "unknown broker '${1:-}' (source, target, spare, open, no-authorizer or private-ca)" ;;
  esac
  external_mode && die "external brokers (KMIG_REAL_*_BOOTSTRAP) are in use: not ours to stop or start"
  [[ -f "$RUN_DIR/$1/server.properties" ]] || die "no $1 broker in $RUN_DIR (run: $0 start, and for spare: $0 start-spare, for open, no-authorizer or private-ca: $0 start-profile NAME)"
  return 0
}

# stop-broker NAME [--kill]: stop one broker, keep its config and data.
cmd_stop_broker() {
  broker_name "${1:-}"
  local name="$1" mode=TERM
  [[ "${2:-}" == --kill ]] && mode=KILL
  stop_pid "$name" "$mode"
}

# start-broker NAME: start a stopped broker again with the same config and data dir.
cmd_start_broker() {
  broker_name "${1:-}"
  local name="$1" key
  need_java
  if pid_alive "$name"; then
    log "$name already running (pid $(cat "$RUN_DIR/$name.pid"))"
    return 0
  fi
  key="$(port_key "$name")"
  local port; port="$(state "$key")"
  [[ -n "$port" ]] || die "no $key in $RUN_DIR/state.env"
  cp -f "$RUN_DIR/$name/broker.log" "$RUN_DIR/$name/broker.log.prev" 2>/dev/null || true
  local t0=$SECONDS
  launch "$name"
  wait_ready "$name" "$port" || { stop_pid "$name"; die "$name broker did not restart (log $RUN_DIR/$name/broker.log)"; }
  log "$name restarted on 127.0.0.1:$port in $((SECONDS - t0))s"
}

q() { printf '%q' "$1"; }

cmd_env() {
  local sb tb user pass mech
  if external_mode; then
    sb="$KMIG_REAL_SOURCE_BOOTSTRAP"; tb="$KMIG_REAL_TARGET_BOOTSTRAP"
    user="${KMIG_REAL_SOURCE_USER:-$ADMIN_USER}"; pass="${KMIG_REAL_SOURCE_PASSWORD:-$ADMIN_PASSWORD}"
    mech="${KMIG_REAL_SOURCE_MECHANISM:-$MECHANISM}"
  else
    pid_alive source && pid_alive target && [[ -f "$RUN_DIR/ready" ]] \
      || die "brokers are not running (run: $0 start)"
    sb="127.0.0.1:$(state SOURCE_PORT)"; tb="127.0.0.1:$(state TARGET_PORT)"
    user="$ADMIN_USER"; pass="$ADMIN_PASSWORD"; mech="$MECHANISM"
  fi
  echo "export KMIG_REAL_SOURCE_BOOTSTRAP=$(q "$sb")"
  echo "export KMIG_REAL_TARGET_BOOTSTRAP=$(q "$tb")"
  # The profile sources (start-profile), when running or given.
  local ob="" nb="" pb="" pc=""
  if external_mode; then
    ob="${KMIG_REAL_SOURCE_OPEN_BOOTSTRAP:-}"; nb="${KMIG_REAL_SOURCE_NOAUTH_BOOTSTRAP:-}"
    pb="${KMIG_REAL_SOURCE_PRIVATE_CA_BOOTSTRAP:-}"; pc="${KMIG_REAL_SOURCE_PRIVATE_CA_FILE:-}"
  else
    pid_alive open && [[ -f "$RUN_DIR/open/ready" ]] && ob="127.0.0.1:$(state OPEN_PORT)"
    pid_alive no-authorizer && [[ -f "$RUN_DIR/no-authorizer/ready" ]] && nb="127.0.0.1:$(state NOAUTH_PORT)"
    if pid_alive private-ca && [[ -f "$RUN_DIR/private-ca/ready" ]]; then
      pb="127.0.0.1:$(state PRIVATE_CA_PORT)"; pc="$PRIVATE_CA_TLS_DIR/ca.pem"
    fi
  fi
  [[ -n "$ob" ]] && echo "export KMIG_REAL_SOURCE_OPEN_BOOTSTRAP=$(q "$ob")"
  [[ -n "$nb" ]] && echo "export KMIG_REAL_SOURCE_NOAUTH_BOOTSTRAP=$(q "$nb")"
  [[ -n "$pb" ]] && echo "export KMIG_REAL_SOURCE_PRIVATE_CA_BOOTSTRAP=$(q "$pb")"
  [[ -n "$pc" ]] && echo "export KMIG_REAL_SOURCE_PRIVATE_CA_FILE=$(q "$pc")"
  echo "export KMIG_REAL_SOURCE_USER=$(q "$user")"
  echo "export KMIG_REAL_SOURCE_PASSWORD=$(q "$pass")"
  echo "export KMIG_REAL_SOURCE_MECHANISM=$(q "$mech")"
  echo "export KMIG_REAL_SOURCE_APP_USER=$(q "${KMIG_REAL_SOURCE_APP_USER:-$APP_USER}")"
  echo "export KMIG_REAL_SOURCE_APP_PASSWORD=$(q "${KMIG_REAL_SOURCE_APP_PASSWORD:-$APP_PASSWORD}")"
  echo "export KMIG_REAL_KAFKA_LIBS=$(q "$LIBS")"
  echo "export KMIG_REAL_KAFKA_VERSION=$(q "$KAFKA_VERSION")"
  if ! external_mode; then
    echo "export KMIG_REAL_RUN_DIR=$(q "$RUN_DIR")"
    echo "export KMIG_REAL_MANAGED=1"
  fi
}

main() {
  local cmd="${1:-}"
  [[ $# -gt 0 ]] && shift
  case "$cmd" in
    fetch) cmd_fetch ;;
    libs) cmd_fetch; echo "$LIBS" ;;
    start) cmd_start ;;
    stop) cmd_stop "$@" ;;
    status) cmd_status ;;
    start-spare) cmd_start_spare ;;
    start-profile) cmd_start_profile "$@" ;;
    stop-broker) cmd_stop_broker "$@" ;;
    start-broker) cmd_start_broker "$@" ;;
    env) cmd_env ;;
    *) sed -n '2,/^set -euo/{/^#/p}' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
}

main "$@"
