#!/usr/bin/env bash
# Makes sure MariaDB (127.0.0.1:3306, root, no password) and PostgreSQL
# (127.0.0.1:5432, trust) answer. It first starts the machine's own servers if
# they are installed but stopped; where they are not installed, it installs
# them from Debian's packages and starts throwaway servers in a temp dir on
# loopback. Prints the DSN exports for the test suites on stdout.
set -euo pipefail

log() { echo "ci-services: $*" >&2; }
answers() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }
wait_port() {
  for _ in $(seq 1 60); do answers "$1" && return 0; sleep 1; done
  return 1
}
apt_updated=
apt_install() {
  if [ -z "$apt_updated" ]; then DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

ensure_mariadb() {
  answers 3306 && return 0
  if command -v mariadbd >/dev/null; then
    log "starting the installed MariaDB"
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd >&2 || true
    wait_port 3306 && return 0
  fi
  command -v mariadbd >/dev/null || { log "installing mariadb-server"; apt_install mariadb-server; }
  local dir; dir=$(mktemp -d /tmp/admin-mariadb.XXXX)
  log "starting a throwaway MariaDB in $dir"
  mariadb-install-db --no-defaults --user=root --datadir="$dir/data" --auth-root-authentication-method=normal >&2
  nohup mariadbd --no-defaults --user=root --datadir="$dir/data" --socket="$dir/sock" \
    --bind-address=127.0.0.1 --port=3306 >"$dir/log" 2>&1 &
  wait_port 3306 || { cat "$dir/log" >&2; return 1; }
  mariadb --socket="$dir/sock" -uroot -e "CREATE DATABASE IF NOT EXISTS test; \
    CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY ''; \
    GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION; FLUSH PRIVILEGES;" >&2 || true
}

ensure_postgres() {
  answers 5432 && return 0
  if ls /etc/postgresql/*/main >/dev/null 2>&1; then
    log "starting the installed PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start >&2 || true
    wait_port 5432 && return 0
  fi
  local bin; bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  if [ -z "$bin" ]; then log "installing postgresql"; apt_install postgresql; bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1); fi
  local dir; dir=$(mktemp -d /tmp/admin-postgres.XXXX)
  chown postgres "$dir" 2>/dev/null || { useradd -r postgres 2>/dev/null || true; chown postgres "$dir"; }
  log "starting a throwaway PostgreSQL in $dir"
  runuser -u postgres -- "$bin/initdb" -D "$dir/data" -A trust -U postgres >&2
  runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -o "-h 127.0.0.1 -p 5432 -k $dir" start >&2
  wait_port 5432 || { cat "$dir/log" >&2; return 1; }
  runuser -u postgres -- psql -h 127.0.0.1 -U postgres -c 'CREATE DATABASE test' >&2 || true
}

ensure_mariadb
ensure_postgres
echo "export ADMIN_TEST_MYSQL_DSN='root@tcp(127.0.0.1:3306)/?parseTime=true&loc=UTC&clientFoundRows=true'"
echo "export ADMIN_TEST_POSTGRES_DSN='postgres://postgres@127.0.0.1:5432/test?sslmode=disable'"
