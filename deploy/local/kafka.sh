#!/usr/bin/env bash
# Runs Apache Kafka 4.x in KRaft mode (one combined broker + controller) as a local process.
# Jars come from Maven Central through deploy/kafka/pom.xml (copied once into $var/kafka/libs); the
# storage is formatted once; the broker runs on the machine's Java with a capped heap.
# With TEXTPULSE_KAFKA_SECURITY_PROTOCOL=SASL_SSL the broker takes only SASL_SSL clients: a CA, a broker
# certificate and a SCRAM-SHA-512 user per service are made first (deploy/local/kafka_tls.sh), the users are
# added at format time, and `python -m deploy.stack infra` applies the ACLs (deploy/acls.py).
# Skipped entirely when KAFKA_BOOTSTRAP_SERVERS names an existing cluster.
# Readiness (a metadata answer) is waited on by `python -m deploy.stack`, not here.
set -euo pipefail

if [ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
  echo "kafka: using the cluster at $KAFKA_BOOTSTRAP_SERVERS"
  exit 0
fi
repo=$(cd "$(dirname "$0")/../.." && pwd)
var=${TEXTPULSE_VAR_DIR:-$repo/var}
port=${TEXTPULSE_KAFKA_PORT:-19092}
controller_port=${TEXTPULSE_KAFKA_CONTROLLER_PORT:-19093}
libs=${TEXTPULSE_KAFKA_LIBS:-$var/kafka/libs}  # tests share the jars of the main var/
mkdir -p "$var/kafka/data" "$var/log" "$var/run"

if [ ! -f "$libs/.complete" ]; then
  echo "kafka: resolving the broker's jars from Maven Central"
  mvn -q -B -f "$repo/deploy/kafka/pom.xml" dependency:copy-dependencies -DoutputDirectory="$libs"
  touch "$libs/.complete"
fi

protocol=${TEXTPULSE_KAFKA_SECURITY_PROTOCOL:-PLAINTEXT}
templates=("$repo/deploy/kafka/server.properties.in")
scram=()
admin_password=
case $protocol in
  PLAINTEXT) ;;
  SASL_SSL)
    bash "$repo/deploy/local/kafka_tls.sh" "$var/kafka" "${TEXTPULSE_PYTHON:-$repo/.venv/bin/python}"
    templates+=("$repo/deploy/kafka/server-sasl-ssl.properties.in")
    for env_file in "$var/kafka/clients"/*.env; do
      user=$(sed -n 's/^TEXTPULSE_KAFKA_SASL_USERNAME=//p' "$env_file")
      password=$(sed -n 's/^TEXTPULSE_KAFKA_SASL_PASSWORD=//p' "$env_file")
      scram+=(--add-scram "SCRAM-SHA-512=[name=$user,password=$password]")
      [ "$user" = admin ] && admin_password=$password
    done
    ;;
  *)
    echo "kafka: the local broker runs PLAINTEXT or SASL_SSL, not TEXTPULSE_KAFKA_SECURITY_PROTOCOL=$protocol" >&2
    exit 1
    ;;
esac
formatted_as=$var/kafka/data/security-protocol
if [ -f "$var/kafka/data/meta.properties" ] && [ "$(cat "$formatted_as" 2>/dev/null || echo PLAINTEXT)" != "$protocol" ]; then
  echo "kafka: the storage in $var/kafka/data was formatted for $(cat "$formatted_as" 2>/dev/null || echo PLAINTEXT)," \
    "not $protocol (its users are made at format time); use another TEXTPULSE_VAR_DIR or make wipe" >&2
  exit 1
fi

props=$var/kafka/server.properties
(umask 077; cat "${templates[@]}" | sed -e "s#@PORT@#$port#g" -e "s#@CONTROLLER_PORT@#$controller_port#g" \
  -e "s#@DATA@#$var/kafka/data#g" -e "s#@TLS@#$var/kafka/tls#g" -e "s#@ADMIN_PASSWORD@#$admin_password#g" > "$props")
java_opts=(-Xms256m -Xmx1g -XX:+UseG1GC -Dlog4j2.configurationFile="$repo/deploy/kafka/log4j2.properties"
  -Dkafka.logs.dir="$var/log")

if [ ! -f "$var/kafka/data/meta.properties" ]; then
  cluster_id=$(java -cp "$libs/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
  java "${java_opts[@]}" -cp "$libs/*" kafka.tools.StorageTool format --standalone -t "$cluster_id" -c "$props" \
    "${scram[@]}" >"$var/log/kafka-format.log" 2>&1
  echo "$protocol" > "$formatted_as"
fi

# kill -0 succeeds on a zombie too; a broker killed with -9 has ended once its zombie's last thread has (its
# main thread shows Z while the others, holding its port, are still going).
alive() {
  local state threads
  state=$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' "/proc/$1/status" 2>/dev/null)
  threads=$(ls "/proc/$1/task" 2>/dev/null | wc -l)
  [ -n "$state" ] && { [ "$state" != Z ] || [ "$threads" -gt 1 ]; }
}
pidfile=$var/run/kafka.pid
if [ -f "$pidfile" ] && alive "$(cat "$pidfile")"; then
  echo "kafka: already running (pid $(cat "$pidfile"))"
  exit 0
fi
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  echo "kafka: port $port is taken by another process (another checkout's stack?); set TEXTPULSE_KAFKA_PORT" >&2
  exit 1
fi
nohup java "${java_opts[@]}" -cp "$libs/*" kafka.Kafka "$props" >>"$var/log/kafka.log" 2>&1 &
echo $! > "$pidfile"
echo "kafka: started on 127.0.0.1:$port, $protocol (pid $!)"
