#!/usr/bin/env bash
# Runs a command beside a throwaway PostgreSQL of its own: a new cluster in a temporary
# directory, listening on a free loopback port (and a socket in that directory), fsync off.
# The command gets BELFRY_TEST_POSTGRES_URL (a superuser URL: tests create their own databases).
# The cluster is stopped and deleted when the command ends, however it ends.
#   scripts/with-postgres.sh swift test
# Needs Debian's postgresql package (.ci/run installs it). initdb refuses to run as root: as
# root, the cluster runs as the postgres user.
set -euo pipefail
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$bin" ]; then echo "with-postgres.sh: no PostgreSQL server (apt-get install postgresql)" >&2; exit 2; fi
dir=$(mktemp -d /tmp/belfry-pg.XXXXXX)
as=()
if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; as=(runuser -u postgres --); fi
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
stop() {
  "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap stop EXIT
"${as[@]}" "$bin/initdb" -D "$dir/data" -A trust -U belfry --no-sync >/dev/null
# The superuser is trusted; every other role must give its password (the tests check that
# jobs work without one).
cat > "$dir/data/pg_hba.conf" <<'HBA'
local all belfry trust
host all belfry 127.0.0.1/32 trust
local all all scram-sha-256
host all all 127.0.0.1/32 scram-sha-256
HBA
"${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -o \
  "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=300" \
  start >/dev/null
export BELFRY_TEST_POSTGRES_URL="postgresql://belfry@127.0.0.1:$port/postgres?sslmode=disable"
# For harnesses that restart the server: `$BELFRY_TEST_POSTGRES_CTL restart -m fast -w`.
export BELFRY_TEST_POSTGRES_CTL="${as[*]} $bin/pg_ctl -D $dir/data"
echo "with-postgres.sh: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (data in $dir)" >&2
set +e
"$@"
status=$?
set -e
exit $status
