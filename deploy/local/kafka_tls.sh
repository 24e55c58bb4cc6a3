#!/usr/bin/env bash
# The local SASL_SSL broker's secrets, made once into $1 (var/kafka): a CA and a broker certificate for
# 127.0.0.1 and localhost (tls/, PEM, which Kafka reads as it is), and a random SCRAM password per Kafka
# user (clients/<user>.env: the TEXTPULSE_KAFKA_* variables a process needs to connect as that user).
# Users are the ones deploy/acls.py names: an admin and one per service.
set -euo pipefail

kafka_dir=$1
python=$2
repo=$(cd "$(dirname "$0")/../.." && pwd)
tls=$kafka_dir/tls
clients=$kafka_dir/clients
mkdir -p "$tls" "$clients"
chmod 700 "$tls" "$clients"

if [ ! -f "$tls/broker.pem" ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=Textpulse local Kafka CA" \
    -keyout "$tls/ca.key" -out "$tls/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=broker" -keyout "$tls/broker.key" -out "$tls/broker.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' > "$tls/broker.ext"
  openssl x509 -req -in "$tls/broker.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial -days 825 \
    -extfile "$tls/broker.ext" -out "$tls/broker.crt" 2>/dev/null
  # Kafka's PEM key store: the private key (PKCS#8) and then the certificate, in one file.
  cat "$tls/broker.key" "$tls/broker.crt" > "$tls/broker.pem"
  rm -f "$tls/broker.csr" "$tls/broker.ext"
  echo "kafka: made a CA and a broker certificate in $tls"
fi

for user in $(cd "$repo" && "$python" -m deploy.acls users); do
  env_file=$clients/$user.env
  [ -f "$env_file" ] && continue
  (umask 077; cat > "$env_file" <<ENV
TEXTPULSE_KAFKA_SECURITY_PROTOCOL=SASL_SSL
TEXTPULSE_KAFKA_SASL_MECHANISM=SCRAM-SHA-512
TEXTPULSE_KAFKA_SASL_USERNAME=$user
TEXTPULSE_KAFKA_SASL_PASSWORD=$(openssl rand -hex 24)
TEXTPULSE_KAFKA_SSL_CAFILE=$tls/ca.pem
ENV
  )
done
