#!/usr/bin/env bash
# Run the PostgreSQL-marked tests against a throwaway server from Debian's packages.
#
#   scripts/postgres_test.sh                 # or: make test-postgres (also run by make test)
#   scripts/postgres_test.sh -x -v           # extra arguments go to pytest
#   PYTHON=.venv/bin/python KEEP_PG=1 scripts/postgres_test.sh   # keep the cluster folder to inspect
#
# What it does, every step idempotent:
#   1. installs Debian's `postgresql` package when no server binaries are present
#      (needs root or password-less sudo; apt-get update && apt-get install postgresql);
#   2. installs the psycopg driver into the Python environment when it is missing;
#   3. initdb's a new cluster in a temporary folder, owned by the unprivileged `postgres`
#      user when run as root (the server refuses to run as root), trust auth on loopback only;
#   4. starts it on 127.0.0.1 on a free port, creates a database, exports
#      STYLETUNE_TEST_POSTGRES_URL and runs `pytest -m postgres`;
#   5. stops the server and removes the folder, also on failure or Ctrl-C.
#
# When PostgreSQL cannot be installed or started here, it prints one line starting with
# "postgres tests: SKIP:" and the reason, and exits 0; set POSTGRES_TESTS_REQUIRED=1
# (e.g. in CI) to make that an error instead. A failing test exits non-zero.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}

skip() {
    echo "postgres tests: SKIP: $*" >&2
    if [ "${POSTGRES_TESTS_REQUIRED:-0}" = "1" ]; then
        echo "postgres tests: FAILED: PostgreSQL is required (POSTGRES_TESTS_REQUIRED=1)" >&2
        exit 1
    fi
    exit 0
}

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
fi

# 1. The server binaries (Debian keeps them in /usr/lib/postgresql/<major>/bin, off PATH).
pg_bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
BIN=$(pg_bindir)
if [ -z "$BIN" ] || [ ! -x "$BIN/initdb" ]; then
    command -v apt-get >/dev/null 2>&1 || skip "no PostgreSQL server and no apt-get to install one; install PostgreSQL yourself"
    if [ "$(id -u)" -ne 0 ] && [ -z "$SUDO" ]; then
        skip "installing PostgreSQL needs root; run: sudo apt-get install -y postgresql"
    fi
    echo "postgres tests: apt-get install -y --no-install-recommends postgresql" >&2
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq || skip "apt-get update failed (no network to the Debian mirrors?)"
    $SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null \
        || skip "apt-get install postgresql failed; see the apt output above"
    BIN=$(pg_bindir)
    [ -n "$BIN" ] && [ -x "$BIN/initdb" ] || skip "postgresql installed but initdb not found under /usr/lib/postgresql"
fi

# 2. The Python driver: psycopg 3, which SQLAlchemy 2.1 uses for postgresql:// URLs (a
#    dependency of styletune; a venv made before it was added may lack it).
[ -x "$PY" ] || PY=$(command -v python3)
if ! "$PY" -c "import psycopg" 2>/dev/null; then
    echo "postgres tests: pip install 'psycopg[binary]'" >&2
    "$PY" -m pip install --quiet "psycopg[binary]>=3.1" >/dev/null 2>&1 \
        || skip "the psycopg driver is missing and pip could not install it; pip install 'psycopg[binary]'"
fi

# 3. A throwaway cluster. The server will not run as root, so as root it runs as `postgres`.
WORK=$(mktemp -d "${TMPDIR:-/tmp}/styletune-pg.XXXXXX") || skip "cannot create a temporary folder"
AS=()
if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || skip "running as root and there is no 'postgres' user to run the server as"
    chown postgres "$WORK"
    chmod 700 "$WORK"
    AS=(runuser -u postgres --)
fi
PORT=$("$PY" -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1]); s.close()")

cleanup() {
    "${AS[@]}" "$BIN/pg_ctl" -D "$WORK/data" -m immediate -w stop >/dev/null 2>&1
    if [ "${KEEP_PG:-0}" = "1" ]; then
        echo "postgres tests: cluster kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"${AS[@]}" "$BIN/initdb" -D "$WORK/data" -U styletune --auth=trust -E UTF8 --no-locale >"$WORK/initdb.log" 2>&1 \
    || skip "initdb failed: $(tail -1 "$WORK/initdb.log")"
"${AS[@]}" "$BIN/pg_ctl" -D "$WORK/data" -l "$WORK/server.log" -w -t 60 \
    -o "-h 127.0.0.1 -p $PORT -k $WORK -c fsync=off -c max_connections=100" start >/dev/null 2>&1 \
    || skip "the server did not start: $(tail -1 "$WORK/server.log" 2>/dev/null)"
"$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U styletune styletune_test 2>"$WORK/createdb.log" \
    || skip "createdb failed: $(tail -1 "$WORK/createdb.log")"

export STYLETUNE_TEST_POSTGRES_URL="postgresql://styletune@127.0.0.1:$PORT/styletune_test"
echo "postgres tests: PostgreSQL $("$BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT ($STYLETUNE_TEST_POSTGRES_URL)" >&2

# 4. The tests (a test failure is the script's failure).
"$PY" -m pytest -q -m postgres tests/test_reliability_concurrency.py "$@"
