#!/usr/bin/env bash
# Switchboard local PostgreSQL: a private cluster under the project's data folder,
# run with Debian's server binaries as the `postgres` user (initdb refuses root).
# It never uses or starts Debian's own cluster/service and does not need systemd.
#
# Usage: deploy/local/postgres.sh {install|start|stop|status|url}
#   install  apt-get install postgresql if no server binaries exist (needs root)
#   start    install if needed, initdb once, start (127.0.0.1 only), create db `switchboard`
#   stop     pg_ctl stop -m fast, wait up to 60 s; exit 0 if not running
#   status   exit 0 if running
#   url      print the SQLAlchemy/asyncpg URL
#
# Env: SB_DATA_DIR (default <repo>/.data; cluster in $SB_DATA_DIR/pg-$SB_PG_PORT),
#      SB_PG_PORT (default 5432).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
DATA_DIR="$(realpath -m "${SB_DATA_DIR:-$REPO_ROOT/.data}")"
PORT="${SB_PG_PORT:-5432}"
DB=switchboard

die() { echo "postgres.sh: error: $*" >&2; exit 1; }

[[ "$PORT" =~ ^[0-9]+$ ]] && (( PORT > 0 && PORT < 65536 )) || die "SB_PG_PORT must be a port number, got '$PORT'"
PGDATA_DIR="$DATA_DIR/pg-$PORT"
PGLOG="$PGDATA_DIR/postgres.log"
URL="postgresql+asyncpg://postgres@127.0.0.1:$PORT/$DB"

# ---------------------------------------------------------------- helpers
# Server binaries: those matching an existing cluster's PG_VERSION, else the newest.
pg_bin() {
  local d
  if [[ -f "$PGDATA_DIR/PG_VERSION" ]]; then
    d="/usr/lib/postgresql/$(cat "$PGDATA_DIR/PG_VERSION")/bin"
    [[ -x "$d/initdb" ]] || die "cluster $PGDATA_DIR was created by PostgreSQL $(cat "$PGDATA_DIR/PG_VERSION"), whose binaries are not installed ($d)"
    echo "$d"; return 0
  fi
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  [[ -n "$d" && -x "$d/initdb" ]] || return 1
  echo "$d"
}

have_server() { compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; }

# Run a command as the postgres user (as ourselves when not root), from a neutral cwd.
as_pg() {
  if (( EUID == 0 )); then
    (cd / && runuser -u postgres -- "$@")
  else
    (cd / && "$@")
  fi
}

# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Prints the postmaster pid if this cluster's postmaster is running.
pm_pid() {
  local pid
  pid="$(head -n 1 "$PGDATA_DIR/postmaster.pid" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] && alive "$pid" || return 1
  # Guard against pid reuse: the postmaster's cwd is its data directory.
  [[ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" == "$PGDATA_DIR" ]] || return 1
  echo "$pid"
}

is_running() { pm_pid >/dev/null; }

# ---------------------------------------------------------------- install
cmd_install() {
  have_server && return 0
  (( EUID == 0 )) || die "PostgreSQL server binaries are missing and installing them needs root (apt-get install postgresql)"
  command -v apt-get >/dev/null 2>&1 || die "PostgreSQL server binaries are missing and apt-get is not available; install PostgreSQL 15+ manually"
  # Keep the package's postinst from starting Debian's own cluster: invoke-rc.d honours
  # policy-rc.d (exit 101 = action forbidden). Only add one if none exists.
  local policy=/usr/sbin/policy-rc.d added_policy=0
  if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod 755 "$policy"; added_policy=1
  fi
  local out rc=0
  out="$( { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; } 2>&1 )" || rc=$?
  (( added_policy )) && rm -f "$policy"
  if (( rc != 0 )); then echo "$out" >&2; die "apt-get install postgresql failed (exit $rc)"; fi
  have_server || die "apt-get installed postgresql but no /usr/lib/postgresql/*/bin/initdb was found"
  # If something started Debian's default cluster anyway, stop it (we never use it).
  if command -v pg_lsclusters >/dev/null 2>&1; then
    local ver name _rest status
    while read -r ver name _rest status _; do
      [[ "$status" == online* ]] && pg_ctlcluster "$ver" "$name" stop >/dev/null 2>&1 || true
    done < <(pg_lsclusters -h 2>/dev/null | awk '{print $1, $2, $3, $4}')
  fi
}

# ---------------------------------------------------------------- start
# postgres must be able to traverse every ancestor of the data dir.
check_traversable() {
  (( EUID == 0 )) || return 0
  local d="" part
  local IFS=/
  for part in ${DATA_DIR#/}; do   # top-down, so the first blocking directory is named
    d="$d/$part"
    runuser -u postgres -- test -x "$d" 2>/dev/null \
      || die "user 'postgres' cannot traverse $d (mode $(stat -c %A "$d"), owner $(stat -c %U "$d")); run 'chmod o+x $d' or set SB_DATA_DIR to a path postgres can reach"
  done
}

write_conf() {
  # Unix socket inside the data dir, unless the path exceeds the sockaddr_un limit
  # (107 bytes); then TCP only (clients use -h 127.0.0.1 anyway).
  local sockdir="$PGDATA_DIR"
  if (( ${#PGDATA_DIR} + ${#PORT} + 10 > 107 )); then
    echo "postgres.sh: warning: $PGDATA_DIR is too long for a unix socket; TCP only" >&2
    sockdir=""
  fi
  local f="$PGDATA_DIR/switchboard.conf"
  cat >"$f.tmp" <<EOF
# Generated by deploy/local/postgres.sh on every start -- edit the script instead.
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$sockdir'
# Test tuning. fsync/full_page_writes/synchronous_commit stay ON: durability tests
# kill the server and rely on committed data surviving.
fsync = on
synchronous_commit = on
full_page_writes = on
shared_buffers = 256MB
max_connections = 200
EOF
  mv "$f.tmp" "$f"
  chown postgres:postgres "$f" 2>/dev/null || true
  grep -q "^include_if_exists = 'switchboard.conf'" "$PGDATA_DIR/postgresql.conf" \
    || echo "include_if_exists = 'switchboard.conf'" >>"$PGDATA_DIR/postgresql.conf"
}

ensure_db() {
  local bin="$1" exists
  exists="$("$bin/psql" -X -q -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -tAc \
    "select 1 from pg_database where datname = '$DB'")" || die "cannot query the server on 127.0.0.1:$PORT (log: $PGLOG)"
  [[ "$exists" == 1 ]] && return 0
  local out
  out="$("$bin/createdb" -h 127.0.0.1 -p "$PORT" -U postgres "$DB" 2>&1)" \
    || [[ "$out" == *"already exists"* ]] || { echo "$out" >&2; die "createdb $DB failed"; }
}

cmd_start() {
  if [[ ! -d "$DATA_DIR" ]]; then
    mkdir -p "$DATA_DIR"
    chmod 755 "$DATA_DIR"   # ours: make sure postgres can traverse it whatever the umask
  fi
  exec 9>"$DATA_DIR/.pg-$PORT.lock"   # serialise concurrent start/stop for this port
  flock 9
  local bin
  if is_running; then
    bin="$(pg_bin)"; ensure_db "$bin"; return 0
  fi
  cmd_install
  bin="$(pg_bin)" || die "no PostgreSQL server binaries found under /usr/lib/postgresql"
  port_open "$PORT" && die "port $PORT is already in use by another process (set SB_PG_PORT)"

  if [[ ! -f "$PGDATA_DIR/PG_VERSION" ]]; then
    mkdir -p "$PGDATA_DIR"
    (( EUID == 0 )) && chown postgres:postgres "$PGDATA_DIR"
    chmod 700 "$PGDATA_DIR"
    check_traversable
    if [[ -n "$(ls -A "$PGDATA_DIR")" ]]; then
      die "$PGDATA_DIR exists, is not a PostgreSQL cluster and is not empty; remove it"
    fi
    local out
    out="$(as_pg "$bin/initdb" -D "$PGDATA_DIR" --auth=trust -U postgres --encoding=UTF8 --locale=C 2>&1 9>&-)" \
      || { echo "$out" >&2; die "initdb failed for $PGDATA_DIR"; }
  else
    check_traversable
  fi
  write_conf
  # Lock files left behind by a crash/kill -9 (their pid is gone or an unreaped
  # zombie): the postmaster refuses to start while a zombie holds that pid. Its
  # shared-memory interlock still protects against orphaned backends.
  rm -f "$PGDATA_DIR/postmaster.pid"
  local lock lpid
  for lock in "$PGDATA_DIR"/.s.PGSQL.*.lock; do
    [[ -f "$lock" ]] || continue
    lpid="$(head -n 1 "$lock" 2>/dev/null || true)"
    if [[ ! "$lpid" =~ ^[0-9]+$ ]] || ! alive "$lpid"; then rm -f "$lock" "${lock%.lock}"; fi
  done
  # The server must not inherit our lock fd (9>&-), or it would hold the lock forever.
  local ctl_out="$DATA_DIR/.pg-$PORT.pg_ctl.out"
  if ! as_pg "$bin/pg_ctl" start -D "$PGDATA_DIR" -l "$PGLOG" -w -t "${SB_START_TIMEOUT_S:-180}" -s 9>&- >"$ctl_out" 2>&1; then
    cat "$ctl_out" >&2
    tail -n 30 "$PGLOG" >&2 2>/dev/null || true
    die "pg_ctl start failed (log: $PGLOG)"
  fi
  ensure_db "$bin"
}

# ---------------------------------------------------------------- stop / status
cmd_stop() {
  [[ -d "$DATA_DIR" ]] || return 0
  exec 9>"$DATA_DIR/.pg-$PORT.lock"
  flock 9
  local pid; pid="$(pm_pid)" || return 0
  # Signal with pg_ctl (-W: no wait) and wait for the postmaster ourselves, so an
  # unreaped zombie does not count as "still running".
  local bin; bin="$(pg_bin)"
  as_pg "$bin/pg_ctl" stop -D "$PGDATA_DIR" -m fast -W -s 9>&- >/dev/null 2>&1 || kill -INT "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 60))
  while alive "$pid"; do
    (( SECONDS < deadline )) || die "postgres (pid $pid) did not shut down within 60 s (log: $PGLOG)"
    sleep 0.1
  done
}

cmd_status() {
  if is_running && port_open "$PORT"; then
    echo "postgres running: $URL (data $PGDATA_DIR)"
    return 0
  fi
  echo "postgres not running (port $PORT, data $PGDATA_DIR)"
  return 1
}

usage() { echo "usage: $0 {install|start|stop|status|url}" >&2; exit 2; }

(( $# == 1 )) || usage
case "$1" in
  install) cmd_install ;;
  start)   cmd_start ;;
  stop)    cmd_stop ;;
  status)  cmd_status ;;
  url)     echo "$URL" ;;
  -h|--help|help) usage ;;
  *) echo "postgres.sh: unknown command '$1'" >&2; usage ;;
esac
