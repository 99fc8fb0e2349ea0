#!/usr/bin/env bash
# Switchboard local stack: real PostgreSQL + real Kafka (deploy/local/postgres.sh and
# kafka.sh) and the five services as separate processes -- no Docker.
#
# Usage: deploy/local/stack.sh {up|down|status|env}
#   up      start PostgreSQL and Kafka, migrate once, start the five services, wait until
#           every GET /readyz answers 200 (SB_START_TIMEOUT_S, 180 s, each); idempotent
#   down    SIGTERM the services (SIGKILL after 45 s), then stop Kafka and PostgreSQL;
#           exit 0 when already down
#   status  each component and whether it is up (exit 0 only when all are up)
#   env     print `export SB_...=...` lines: eval "$(deploy/local/stack.sh env)" and then
#           use the `switchboard` CLI (tenant create, token mint) against the stack
#
# Env: SB_DATA_DIR (default <repo>/.data), SB_PG_PORT (default 5432), SB_KAFKA_PORT
#      (default 9092), SB_STACK_BASE_PORT (default 8000: services on base+1..base+5).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
DATA_DIR="$(realpath -m "${SB_DATA_DIR:-$REPO_ROOT/.data}")"
PGPORT="${SB_PG_PORT:-5432}"
KPORT="${SB_KAFKA_PORT:-9092}"
BASE="${SB_STACK_BASE_PORT:-8000}"
STACK_DIR="$DATA_DIR/stack"
KEY_DIR="$DATA_DIR/keys"
PY="$REPO_ROOT/.venv/bin/python"
CLI="$REPO_ROOT/.venv/bin/switchboard"
SERVICES=(ingest crm routing analytics notifier)
READY_TIMEOUT="${SB_START_TIMEOUT_S:-180}"
# a service's stop bound (sbkit.serve.stop_bound_s: drain 20 s + 5 s for requests + 15 s for the
# lifespan) plus a margin: a SIGKILL before it would cut a drain that is still within its bound
STOP_TIMEOUT=45

die() { echo "stack.sh: error: $*" >&2; exit 1; }

for v in PGPORT KPORT BASE; do
  [[ "${!v}" =~ ^[0-9]+$ ]] && (( ${!v} > 0 && ${!v} < 65530 )) || die "$v must be a port number, got '${!v}'"
done

# Everything the stack's processes (and the CLI, via `env`) need.
stack_env() {
  cat <<EOF
SB_DATA_DIR=$DATA_DIR
SB_PG_PORT=$PGPORT
SB_KAFKA_PORT=$KPORT
SB_STACK_BASE_PORT=$BASE
SB_BUS=kafka
SB_KAFKA_BOOTSTRAP=127.0.0.1:$KPORT
SB_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:$PGPORT/switchboard
SB_MIGRATE_ON_START=false
SB_AUTH_KEY_DIR=$KEY_DIR
EOF
}

export_stack_env() {
  local line
  while IFS= read -r line; do export "${line?}"; done < <(stack_env)
  unset SB_LOCAL_BUS_PATH SB_PORT
}

svc_port() {
  local i
  for i in "${!SERVICES[@]}"; do
    [[ "${SERVICES[$i]}" == "$1" ]] && { echo $((BASE + i + 1)); return; }
  done
  die "unknown service $1"
}

# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Prints the pid if the pid file points at a live `python -m <svc>` of ours.
svc_pid() {
  local f="$STACK_DIR/$1.pid" pid
  [[ -f "$f" ]] || return 1
  pid="$(cat "$f" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] && alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "-m $1 \?$" || return 1
  echo "$pid"
}

ready() { curl -fsS -m 3 -o /dev/null "http://127.0.0.1:$1/readyz" 2>/dev/null; }

# ---------------------------------------------------------------- up
ensure_keys() {
  # Create the signing key once, before five processes would race to create their own.
  [[ -f "$KEY_DIR/current" ]] && return 0
  "$CLI" keys rotate >/dev/null || die "switchboard keys rotate failed"
}

start_service() {
  local svc="$1" port pid
  port="$(svc_port "$svc")"
  if pid="$(svc_pid "$svc")"; then
    return 0   # running (or still starting): leave it alone, wait_ready checks it
  fi
  port_open "$port" && die "port $port ($svc) is in use by another process (set SB_STACK_BASE_PORT)"
  local log="$STACK_DIR/$svc.log"
  [[ -f "$log" ]] && mv -f "$log" "$log.prev"
  (
    cd "$STACK_DIR"
    SB_PORT="$port" SB_HOST=127.0.0.1 nohup "$PY" -m "$svc" >"$log" 2>&1 </dev/null 9>&- &
    echo $! >"$STACK_DIR/$svc.pid"
  )
}

wait_ready() {
  local svc="$1" port pid deadline
  port="$(svc_port "$svc")"
  deadline=$((SECONDS + READY_TIMEOUT))
  while :; do
    if ! pid="$(svc_pid "$svc")"; then
      tail -n 40 "$STACK_DIR/$svc.log" >&2 2>/dev/null || true
      die "$svc exited during startup (log: $STACK_DIR/$svc.log)"
    fi
    ready "$port" && return 0
    if (( SECONDS >= deadline )); then
      tail -n 40 "$STACK_DIR/$svc.log" >&2 2>/dev/null || true
      curl -sS -m 3 "http://127.0.0.1:$port/readyz" >&2 2>/dev/null && echo >&2 || true
      die "$svc (pid $pid) not ready on port $port after $READY_TIMEOUT s (log: $STACK_DIR/$svc.log)"
    fi
    sleep 0.25
  done
}

cmd_up() {
  [[ -x "$PY" ]] || die "no virtualenv at $REPO_ROOT/.venv (run: make venv)"
  command -v curl >/dev/null 2>&1 || die "curl not found on PATH"
  mkdir -p "$STACK_DIR"
  exec 9>"$STACK_DIR/.lock"   # serialise concurrent up/down of this stack
  flock 9
  local t0=$SECONDS
  SB_DATA_DIR="$DATA_DIR" SB_PG_PORT="$PGPORT" bash "$SCRIPT_DIR/postgres.sh" start 9>&- \
    || die "PostgreSQL did not start"
  SB_DATA_DIR="$DATA_DIR" SB_KAFKA_PORT="$KPORT" bash "$SCRIPT_DIR/kafka.sh" start 9>&- \
    || die "Kafka did not start"
  export_stack_env
  ensure_keys
  local out
  out="$(cd "$STACK_DIR" && "$CLI" migrate 2>&1 9>&-)" || { echo "$out" >&2; die "switchboard migrate failed"; }
  local svc
  for svc in "${SERVICES[@]}"; do start_service "$svc"; done
  for svc in "${SERVICES[@]}"; do wait_ready "$svc"; done
  printf '%-10s %-8s %s\n' service pid url
  for svc in "${SERVICES[@]}"; do
    printf '%-10s %-8s %s\n' "$svc" "$(svc_pid "$svc")" "http://127.0.0.1:$(svc_port "$svc")"
  done
  printf '%-10s %-8s %s\n' kafka - "127.0.0.1:$KPORT" postgres - "$SB_DATABASE_URL"
  echo "stack up in $((SECONDS - t0)) s; CLI: eval \"\$($0 env)\""
}

# ---------------------------------------------------------------- down
stop_service() {
  local svc="$1" pid
  if ! pid="$(svc_pid "$svc")"; then rm -f "$STACK_DIR/$svc.pid"; return 0; fi
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while alive "$pid" && (( SECONDS < deadline )); do sleep 0.1; done
  if alive "$pid"; then
    echo "stack.sh: $svc (pid $pid) ignored SIGTERM for $STOP_TIMEOUT s; sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
    while alive "$pid"; do sleep 0.1; done
  fi
  rm -f "$STACK_DIR/$svc.pid"
}

cmd_down() {
  if [[ -d "$STACK_DIR" ]]; then
    exec 9>"$STACK_DIR/.lock"
    flock 9
    local svc pids=()
    # Signal all at once (they drain in parallel), then wait for each.
    for svc in "${SERVICES[@]}"; do stop_service "$svc" & pids+=($!); done
    local rc=0 p
    for p in "${pids[@]}"; do wait "$p" || rc=1; done
    (( rc == 0 )) || die "could not stop every service"
  fi
  SB_DATA_DIR="$DATA_DIR" SB_KAFKA_PORT="$KPORT" bash "$SCRIPT_DIR/kafka.sh" stop 9>&-
  SB_DATA_DIR="$DATA_DIR" SB_PG_PORT="$PGPORT" bash "$SCRIPT_DIR/postgres.sh" stop 9>&-
}

# ---------------------------------------------------------------- status
cmd_status() {
  local all=0 svc port pid
  SB_DATA_DIR="$DATA_DIR" SB_PG_PORT="$PGPORT" bash "$SCRIPT_DIR/postgres.sh" status || all=1
  SB_DATA_DIR="$DATA_DIR" SB_KAFKA_PORT="$KPORT" bash "$SCRIPT_DIR/kafka.sh" status || all=1
  for svc in "${SERVICES[@]}"; do
    port="$(svc_port "$svc")"
    if pid="$(svc_pid "$svc")"; then
      if ready "$port"; then
        echo "$svc running: pid $pid, http://127.0.0.1:$port (ready)"
      else
        echo "$svc running: pid $pid, http://127.0.0.1:$port (NOT ready)"; all=1
      fi
    else
      echo "$svc not running (port $port)"; all=1
    fi
  done
  return "$all"
}

cmd_env() {
  local line
  while IFS= read -r line; do
    printf 'export %s=%q\n' "${line%%=*}" "${line#*=}"
  done < <(stack_env)
}

usage() { echo "usage: $0 {up|down|status|env}" >&2; exit 2; }

(( $# == 1 )) || usage
case "$1" in
  up)     cmd_up ;;
  down)   cmd_down ;;
  status) cmd_status ;;
  env)    cmd_env ;;
  -h|--help|help) usage ;;
  *) echo "stack.sh: unknown command '$1'" >&2; usage ;;
esac
