#!/usr/bin/env bash
# Runs the test suite on the machine the README describes, and only that: a
# private network namespace (`unshare --net`) where nothing listens but a fresh
# PostgreSQL cluster on 127.0.0.1:5432 (trust auth, user postgres) that this
# script starts; no NATS server on 4222, no `test` database. nats-server must be
# on the PATH (the tests start their own). Run as root (unshare, initdb as postgres).
#
#   scripts/test-isolated.sh            # npm test, isolated
#   scripts/test-isolated.sh --busy     # the same, with every core kept busy meanwhile
#   scripts/test-isolated.sh -- test/cli.test.ts   # extra arguments go to vitest
#   npm run isolated [-- --busy]
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${TASKFLOW_ISOLATED:-}" != "1" ]; then
  [ "$(id -u)" = "0" ] || { echo "test-isolated: run as root (unshare --net, initdb as postgres)" >&2; exit 2; }
  exec unshare --net env TASKFLOW_ISOLATED=1 bash "$0" "$@"
fi

busy=0
vitest_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --busy) busy=1 ;;
    --) shift; vitest_args+=("$@"); break ;;
    *) vitest_args+=("$1") ;;
  esac
  shift
done

ip link set lo up
pg_user=postgres
pgdata=$(mktemp -d /tmp/taskflow-isolated-pg-XXXXXX)
chown "$pg_user" "$pgdata"
loops=()
cleanup() {
  for pid in "${loops[@]}"; do kill "$pid" 2>/dev/null || true; done
  runuser -u "$pg_user" -- pg_ctl -D "$pgdata/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$pgdata"
}
trap cleanup EXIT

echo "test-isolated: network namespace with only lo; fresh PostgreSQL cluster in $pgdata"
runuser -u "$pg_user" -- initdb -D "$pgdata/data" -A trust -U postgres >"$pgdata/initdb.log"
# The Unix socket goes in the temp folder: /var/run/postgresql is shared with the host's server.
runuser -u "$pg_user" -- pg_ctl -D "$pgdata/data" -l "$pgdata/server.log" -w \
  -o "-c listen_addresses=127.0.0.1 -p 5432 -k $pgdata -c fsync=off" start >/dev/null
pg_isready -h 127.0.0.1 -p 5432
if (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; then echo "test-isolated: something listens on 4222" >&2; exit 1; fi
echo "test-isolated: nats-server is $(command -v nats-server || echo 'NOT on the PATH')"

if [ "$busy" = "1" ]; then
  for _ in $(seq "$(nproc)"); do
    (while :; do :; done) &
    loops+=("$!")
  done
  echo "test-isolated: $(nproc) busy loops running (pids ${loops[*]})"
fi

start=$(date +%s)
status=0
npm test -- "${vitest_args[@]}" || status=$?
echo "test-isolated: npm test exited $status after $(( $(date +%s) - start )) s$([ "$busy" = "1" ] && echo ' (cores kept busy)')"
exit "$status"
