#!/usr/bin/env bash
# A moto server (S3, SQS, SNS, DynamoDB, EventBridge, Security Hub) on 127.0.0.1 for the AWS integration tests
# (TESTING.md §1). The pinned version is installed once into a venv outside the work tree and
# reused while the version matches.
#
#   scripts/moto.sh start   installs if needed, starts on a free port, prints
#                           `export TRAILHOUND_MOTO_ENDPOINT=http://127.0.0.1:PORT` (eval it)
#   scripts/moto.sh stop    stops the server started by `start`
set -euo pipefail

MOTO_VERSION="5.2.5"
# The services the tests use; CloudFormation brings the backends its stacks create (IAM, Lambda,
# ECS, CloudWatch, Logs).
MOTO_EXTRAS="s3,sqs,sns,dynamodb,events,cloudformation,server"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/trailhound"
venv="${TRAILHOUND_MOTO_VENV:-$cache/moto-$MOTO_VERSION-$(echo "$MOTO_EXTRAS" | sha256sum | cut -c1-8)}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
run_dir="${TRAILHOUND_MOTO_RUN:-${TMPDIR:-/tmp}/trailhound-moto-$UID}"

install() {
  if [[ -x "$venv/bin/moto_server" ]] && "$venv/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
    return
  fi
  echo "installing moto $MOTO_VERSION into $venv" >&2
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "moto[$MOTO_EXTRAS]==$MOTO_VERSION" flask flask-cors >&2
}

start() {
  install
  mkdir -p "$run_dir"
  stop_quietly
  local log="$run_dir/moto.log"
  : >"$log"
  # Port 0: the OS picks a free port, which moto prints in its log.
  AWS_EC2_METADATA_DISABLED=true nohup "$venv/bin/python" "$here/moto_server.py" -H 127.0.0.1 -p 0 >"$log" 2>&1 &
  echo $! >"$run_dir/moto.pid"
  local port="" deadline=$((SECONDS + 30))
  while [[ -z "$port" ]]; do
    port=$(grep -o 'http://127.0.0.1:[0-9]*' "$log" | head -n 1 | grep -o '[0-9]*$' || true)
    if (( SECONDS > deadline )) || ! kill -0 "$(cat "$run_dir/moto.pid")" 2>/dev/null; then
      echo "moto did not start; its log:" >&2; cat "$log" >&2; exit 1
    fi
    [[ -n "$port" ]] || sleep 0.1
  done
  until "$venv/bin/python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/', timeout=2)" 2>/dev/null; do
    if (( SECONDS > deadline )); then echo "moto on port $port never answered" >&2; exit 1; fi
    sleep 0.1
  done
  echo "moto $MOTO_VERSION ready on 127.0.0.1:$port (pid $(cat "$run_dir/moto.pid"))" >&2
  echo "export TRAILHOUND_MOTO_ENDPOINT=http://127.0.0.1:$port"
  # boto3 comes with moto: the deployment tests deploy CloudFormation stacks with it.
  echo "export TRAILHOUND_MOTO_PYTHON=$venv/bin/python"
}

stop_quietly() {
  if [[ -f "$run_dir/moto.pid" ]]; then
    kill "$(cat "$run_dir/moto.pid")" 2>/dev/null || true
    rm -f "$run_dir/moto.pid"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop_quietly ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
