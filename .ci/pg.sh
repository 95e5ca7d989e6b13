# shellcheck shell=bash
# A throwaway PostgreSQL server for siyu's tests. Source it (from .ci/run, or by hand):
#
#     source .ci/pg.sh && cargo test -p siyu-store
#
# It installs Debian's PostgreSQL if missing, starts a private server on 127.0.0.1 (trust
# auth, fsync off: test data only) in a fresh temporary directory, and exports
#
#     SIYU_TEST_POSTGRES=postgres://siyu@127.0.0.1:PORT/siyu_test
#     SIYU_PG_DIR=<the server's directory>
#
# Stop it with `siyu_pg_stop` (also run on shell exit when the shell had no EXIT trap).
# Sourcing it again in the same shell reuses the running server. A SIYU_TEST_POSTGRES set
# by someone else (a CI service container) is left alone.
# Knobs: SIYU_PG_USER (the unprivileged user the server runs as when we are root,
# default siyu-pg), SIYU_PG_PORT (first port tried, default 54329), SIYU_PG_TMP (default /tmp).

_siyu_pg_log() { printf 'pg.sh: %s\n' "$*" >&2; }

# Runs a command as the server's owner: initdb and pg_ctl refuse to run as root.
_siyu_pg_as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u "${SIYU_PG_USER:-siyu-pg}" -- "$@"
    else
        "$@"
    fi
}

# The bin directory of the newest Debian PostgreSQL (not /usr/local/bin wrappers).
_siyu_pg_bindir() {
    local dir best=""
    for dir in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V); do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && [ -x "$dir/pg_isready" ]; then
            best=$dir
        fi
    done
    [ -n "$best" ] && printf '%s\n' "$best"
}

_siyu_pg_install() {
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo="sudo -n"
        else
            _siyu_pg_log "PostgreSQL is not installed and we are not root: apt-get install postgresql"
            return 1
        fi
    fi
    _siyu_pg_log "installing PostgreSQL (apt-get)"
    local apt="$sudo env DEBIAN_FRONTEND=noninteractive apt-get -q -y --no-install-recommends"
    $apt update >&2 || return 1
    # We only want the binaries: no default cluster started on port 5432. As the official
    # postgres images do, install postgresql-common first and switch that cluster off.
    $apt install postgresql-common >&2 || return 1
    if [ -f /etc/postgresql-common/createcluster.conf ]; then
        $sudo sed -ri 's/^#?[[:space:]]*(create_main_cluster)[[:space:]]*=.*$/\1 = false/' \
            /etc/postgresql-common/createcluster.conf || return 1
    fi
    $apt install postgresql >&2 || return 1
}

_siyu_pg_port_busy() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

siyu_pg_stop() {
    local dir=${SIYU_PG_DIR:-}
    if [ -z "$dir" ]; then
        _siyu_pg_log "no server started by pg.sh in this shell"
        return 0
    fi
    if [ -d "$dir/data" ]; then
        (cd "$dir" && _siyu_pg_as_owner "${SIYU_PG_BIN:-}/pg_ctl" -D "$dir/data" -m fast -w stop \
            >/dev/null 2>&1) || _siyu_pg_log "pg_ctl stop failed (see $dir/server.log)"
    fi
    rm -rf -- "$dir"
    unset SIYU_PG_DIR SIYU_PG_BIN SIYU_TEST_POSTGRES
}

_siyu_pg_main() {
    local bin user dir port tries started log
    user=${SIYU_PG_USER:-siyu-pg}

    # Reuse the server of an earlier run in this shell if it still runs.
    if [ -n "${SIYU_PG_DIR:-}" ] && [ -n "${SIYU_PG_BIN:-}" ] && [ -n "${SIYU_TEST_POSTGRES:-}" ] &&
        (cd "$SIYU_PG_DIR" 2>/dev/null && _siyu_pg_as_owner "$SIYU_PG_BIN/pg_ctl" -D "$SIYU_PG_DIR/data" status >/dev/null 2>&1); then
        _siyu_pg_log "reusing the server in $SIYU_PG_DIR: $SIYU_TEST_POSTGRES"
        return 0
    fi
    if [ -n "${SIYU_TEST_POSTGRES:-}" ] && [ -z "${SIYU_PG_DIR:-}" ]; then
        _siyu_pg_log "SIYU_TEST_POSTGRES is already set; using it as it is"
        return 0
    fi
    unset SIYU_PG_DIR SIYU_PG_BIN SIYU_TEST_POSTGRES

    bin=$(_siyu_pg_bindir) || bin=""
    if [ -z "$bin" ]; then
        _siyu_pg_install || return 1
        bin=$(_siyu_pg_bindir) || bin=""
        if [ -z "$bin" ]; then
            _siyu_pg_log "no initdb/pg_ctl under /usr/lib/postgresql/*/bin after installing"
            return 1
        fi
    fi

    if [ "$(id -u)" -eq 0 ] && ! id -u "$user" >/dev/null 2>&1; then
        useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin "$user" || return 1
    fi

    dir=$(mktemp -d "${SIYU_PG_TMP:-/tmp}/siyu-pg.XXXXXX") || return 1
    chmod 700 "$dir" || return 1
    if [ "$(id -u)" -eq 0 ]; then
        chown "$user:" "$dir" || return 1
    fi
    log="$dir/server.log"

    if ! (cd "$dir" && _siyu_pg_as_owner "$bin/initdb" -D "$dir/data" --username=siyu \
        --auth=trust --encoding=UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1); then
        _siyu_pg_log "initdb failed:"
        cat "$dir/initdb.log" >&2
        rm -rf -- "$dir"
        return 1
    fi
    # Loopback only, no durability (test data), sockets in our own directory.
    cat >>"$dir/data/postgresql.conf" <<EOF

# pg.sh: a throwaway test server
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
EOF

    port=${SIYU_PG_PORT:-54329}
    started=""
    for tries in $(seq 1 50); do
        if ! _siyu_pg_port_busy "$port"; then
            if (cd "$dir" && _siyu_pg_as_owner "$bin/pg_ctl" -D "$dir/data" -l "$log" \
                -o "-p $port" -w -t 60 start >/dev/null 2>&1); then
                started=1
                break
            fi
            # Someone took the port between the check and the start: try the next one.
            _siyu_pg_log "could not start on port $port (attempt $tries), trying the next"
        fi
        port=$((port + 1))
    done
    if [ -z "$started" ]; then
        _siyu_pg_log "the server did not start; its log:"
        cat "$log" >&2 2>/dev/null
        rm -rf -- "$dir"
        return 1
    fi
    export SIYU_PG_DIR=$dir
    export SIYU_PG_BIN=$bin
    if ! "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -t 30; then
        _siyu_pg_log "the server does not answer on 127.0.0.1:$port"
        siyu_pg_stop
        return 1
    fi
    if ! "$bin/createdb" -h 127.0.0.1 -p "$port" -U siyu siyu_test; then
        _siyu_pg_log "createdb failed"
        siyu_pg_stop
        return 1
    fi
    export SIYU_TEST_POSTGRES="postgres://siyu@127.0.0.1:$port/siyu_test"
    if [ -z "$(trap -p EXIT)" ]; then
        trap siyu_pg_stop EXIT
        _siyu_pg_log "PostgreSQL $("$bin/pg_ctl" --version | awk '{print $3}') on 127.0.0.1:$port (stopped on shell exit, or now with: siyu_pg_stop)"
    else
        _siyu_pg_log "PostgreSQL on 127.0.0.1:$port; stop it with: siyu_pg_stop"
    fi
    _siyu_pg_log "SIYU_TEST_POSTGRES=$SIYU_TEST_POSTGRES"
}

if ! (return 0 2>/dev/null); then
    _siyu_pg_log "source this file (source .ci/pg.sh) so that SIYU_TEST_POSTGRES reaches your shell"
fi
_siyu_pg_main
