#!/usr/bin/env bash
# S3Proxy 2.6 (S3-compatible, filesystem-backed) on 127.0.0.1: the frame store's S3 server
# for tests and one machine.
#   s3proxy.sh install   resolve the jar from Maven Central into $CANDOR_HOME/s3proxy/lib
#   s3proxy.sh start     start, wait until it listens
#   s3proxy.sh stop      stop by PID file (TERM, then KILL after 30 s)
#   s3proxy.sh status    print "up <endpoint>" or "down", exit 0/3
# Env: CANDOR_HOME, CANDOR_S3_PORT (19000), CANDOR_S3_DIR ($CANDOR_HOME/s3proxy),
#      CANDOR_S3_ACCESS_KEY / CANDOR_S3_SECRET_KEY (candor / candor-secret).
# Clients must send checksums only when required (boto3:
# Config(request_checksum_calculation="when_required",
# response_checksum_validation="when_required")): S3Proxy refuses x-amz-checksum-crc32.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PORT="${CANDOR_S3_PORT:-19000}"
DIR="${CANDOR_S3_DIR:-$CANDOR_HOME/s3proxy}"
LIB="$CANDOR_HOME/s3proxy/lib"
PIDFILE="$DIR/s3proxy.pid"
LOGFILE="$DIR/s3proxy.log"
POM="$CANDOR_REPO/deploy/local/s3proxy-pom.xml"

install() {
  need java "install OpenJDK 17: apt-get install -y openjdk-17-jre-headless"
  need mvn "install Maven: apt-get install -y maven"
  mkdir -p "$CANDOR_HOME/s3proxy"
  local stamp="$LIB/.pom.sha256" want
  want=$(sha256sum "$POM" | cut -d' ' -f1)
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then return 0; fi
  log "resolving S3Proxy from Maven Central into $LIB"
  rm -rf "$LIB.tmp"
  mvn -q -B -f "$POM" dependency:copy-dependencies \
      -DoutputDirectory="$LIB.tmp" -DincludeScope=runtime \
      >"$CANDOR_HOME/s3proxy/maven.log" 2>&1 \
    || { tail -n 30 "$CANDOR_HOME/s3proxy/maven.log" >&2; die "Maven could not resolve S3Proxy"; }
  rm -rf "$LIB" && mv "$LIB.tmp" "$LIB"
  echo "$want" >"$stamp"
}

start() {
  install
  if pid_alive "$PIDFILE"; then log "s3proxy already running"; return 0; fi
  port_free "$PORT" || die "port $PORT is taken"
  mkdir -p "$DIR/data"
  cat >"$DIR/s3proxy.properties" <<PROPS
# written by deploy/local/s3proxy.sh; edits are overwritten on start
s3proxy.endpoint=http://127.0.0.1:$PORT
s3proxy.authorization=aws-v2-or-v4
s3proxy.identity=${CANDOR_S3_ACCESS_KEY:-candor}
s3proxy.credential=${CANDOR_S3_SECRET_KEY:-candor-secret}
jclouds.provider=filesystem
jclouds.filesystem.basedir=$DIR/data
PROPS
  local jar
  jar=$(ls "$LIB"/s3proxy-*-jar-with-dependencies.jar)
  nohup java -Xmx256m -jar "$jar" --properties "$DIR/s3proxy.properties" \
    >"$LOGFILE" 2>&1 &
  echo $! >"$PIDFILE"
  wait_port "$PORT" 60 "$PIDFILE" s3proxy "$LOGFILE" || { stop_pid "$PIDFILE" s3proxy 10; exit 1; }
  log "s3proxy up on http://127.0.0.1:$PORT (data in $DIR/data)"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop_pid "$PIDFILE" s3proxy 30 ;;
  status)
    if pid_alive "$PIDFILE" && ! port_free "$PORT"; then echo "up http://127.0.0.1:$PORT"
    else echo down; exit 3; fi ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
