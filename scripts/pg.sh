#!/usr/bin/env bash
# A throw-away PostgreSQL server for the tests: initdb into a temporary directory, postgres on
# 127.0.0.1 with a free port (its unix socket inside that directory), trust authentication,
# settings for speed rather than durability. Nothing outside the directory is touched.
#
#   eval "$(scripts/pg.sh start)"   starts it and prints, as shell exports,
#                                   LLMGW_TEST_DATABASE_URL (postgresql://...) and LLMGW_PG_DIR
#   scripts/pg.sh stop [DIR]        stops the server of DIR (default $LLMGW_PG_DIR), removes DIR
#   scripts/pg.sh pause DIR         stops the server at once (like a crash), keeping its data
#   scripts/pg.sh resume DIR        starts it again on the same port (outage tests)
#
# initdb and postgres refuse to run as root: as root the server runs as the `postgres` user of
# Debian's package (or `nobody` when that user does not exist), which owns the directory.
# The binaries are Debian's (/usr/lib/postgresql/<version>/bin, not on PATH), else PATH's.
set -euo pipefail

readonly kDatabase=llmgw_test
readonly kUser=llmgw
readonly kStartAttempts=5

die() {
  echo "pg.sh: $*" >&2
  exit 1
}

find_bindir() {
  local dir
  # The highest installed major version first.
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -n -r); do
    if [[ -x $dir/initdb && -x $dir/postgres ]]; then
      echo "$dir"
      return
    fi
  done
  if command -v initdb >/dev/null && command -v postgres >/dev/null; then
    dirname "$(command -v postgres)"
    return
  fi
  die "no PostgreSQL server binaries (initdb, postgres): run scripts/install-deps.sh"
}

# Runs a command as the server's user (unchanged when not root).
as_server_user() {
  if [[ $(id -u) == 0 ]]; then
    runuser -u "$server_user" -- "$@"
  else
    "$@"
  fi
}

# A TCP port no socket uses now, below the kernel's ephemeral range: the outage tests stop the
# server and start it again on the same port, and a port in that range can meanwhile become
# the local port of some client's connection (postgres may still lose a race: start retries).
free_port() {
  local port low=32768 range
  if range=$(cat /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null); then
    low=${range%%[[:space:]]*}
  fi
  ((low > 11000)) || low=32768
  for _ in $(seq 1 50); do
    port=$((10000 + RANDOM % (low - 10000)))
    if ! ss -Htan "sport = :$port" 2>/dev/null | grep -q .; then
      echo "$port"
      return
    fi
  done
  die "no free TCP port found"
}

start() {
  local bindir dir port url attempt
  bindir=$(find_bindir)
  server_user=$(id -un)
  if [[ $(id -u) == 0 ]]; then
    server_user=nobody
    if getent passwd postgres >/dev/null; then server_user=postgres; fi
  fi
  dir=$(mktemp -d "${TMPDIR:-/tmp}/llmgw-pg.XXXXXX")
  chmod 755 "$dir"
  mkdir "$dir/data" "$dir/socket" "$dir/log"
  if [[ $(id -u) == 0 ]]; then chown "$server_user" "$dir/data" "$dir/socket" "$dir/log"; fi
  echo "$server_user" >"$dir/user"
  echo "$bindir" >"$dir/bindir"

  if ! as_server_user "$bindir/initdb" -D "$dir/data" -U "$kUser" --auth=trust \
      --encoding=UTF8 --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1; then
    cat "$dir/initdb.log" >&2
    rm -rf "$dir"
    die "initdb failed"
  fi

  for attempt in $(seq 1 "$kStartAttempts"); do
    port=$(free_port)
    # fsync off and friends: a test server is thrown away, never recovered. One line: pg_ctl
    # hands the options to a shell.
    local options="-c listen_addresses=127.0.0.1 -p $port -k $dir/socket -c fsync=off"
    options+=" -c full_page_writes=off -c max_connections=300"
    # Asynchronous commit loses the last acknowledged transactions when the server is killed:
    # fine for tests that never kill it, wrong for the outage tests (LLMGW_PG_DURABLE=1).
    if [[ ${LLMGW_PG_DURABLE:-0} != 1 ]]; then options+=" -c synchronous_commit=off"; fi
    if as_server_user "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log/postgres.log" -w -t 60 \
        -o "$options" start >/dev/null 2>&1; then
      echo "$options" >"$dir/options"
      break
    fi
    if ((attempt == kStartAttempts)); then
      tail -n 20 "$dir/log/postgres.log" >&2 || true
      rm -rf "$dir"
      die "postgres did not start"
    fi
  done
  echo "$port" >"$dir/port"

  local ready=0
  for _ in $(seq 1 100); do
    if "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" -U "$kUser" -d postgres; then
      ready=1
      break
    fi
    sleep 0.1
  done
  if ((ready == 0)); then
    stop "$dir"
    die "postgres is not ready on port $port"
  fi
  "$bindir/psql" -q -h 127.0.0.1 -p "$port" -U "$kUser" -d postgres -v ON_ERROR_STOP=1 \
      -c "CREATE DATABASE $kDatabase" >/dev/null

  url="postgresql://$kUser@127.0.0.1:$port/$kDatabase"
  printf 'export LLMGW_TEST_DATABASE_URL=%q\nexport LLMGW_PG_DIR=%q\n' "$url" "$dir"
  echo "pg.sh: PostgreSQL ready at $url (directory $dir)" >&2
}

stop() {
  local dir=${1:-${LLMGW_PG_DIR:-}}
  [[ -n $dir ]] || die "stop: no directory given and LLMGW_PG_DIR is unset"
  [[ -f $dir/bindir && -d $dir/data ]] || die "stop: $dir is not a directory made by pg.sh start"
  server_user=$(cat "$dir/user")
  if [[ -f $dir/data/postmaster.pid ]]; then
    as_server_user "$(cat "$dir/bindir")/pg_ctl" -D "$dir/data" -m immediate -w stop \
      >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
}

pause() {
  local dir=${1:-}
  [[ -f $dir/bindir && -d $dir/data ]] || die "pause: $dir is not a directory made by pg.sh start"
  server_user=$(cat "$dir/user")
  as_server_user "$(cat "$dir/bindir")/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 ||
    die "pause: pg_ctl stop failed"
}

resume() {
  local dir=${1:-}
  [[ -f $dir/options ]] || die "resume: $dir is not a directory made by pg.sh start"
  server_user=$(cat "$dir/user")
  local attempt
  for attempt in 1 2 3 4 5; do
    if as_server_user "$(cat "$dir/bindir")/pg_ctl" -D "$dir/data" -l "$dir/log/postgres.log" \
        -w -t 60 -o "$(cat "$dir/options")" start >/dev/null 2>&1; then
      return
    fi
    sleep 1  # e.g. the port still held by a closing socket
  done
  die "resume: postgres did not start (log: $dir/log/postgres.log)"
}

case ${1:-} in
  start) start ;;
  stop) stop "${2:-}" ;;
  pause) pause "${2:-}" ;;
  resume) resume "${2:-}" ;;
  *) die "usage: scripts/pg.sh start | stop [DIR] | pause DIR | resume DIR" ;;
esac
