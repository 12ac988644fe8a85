#!/usr/bin/env bash
# Makes sure PostgreSQL and Redis answer at DATABASE_URL / REDIS_URL.
# Uses running ones; otherwise starts local ones: installed binaries, then
# Debian packages (when root), then docker compose (when a Docker engine runs).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*" >&2; }
py=.venv/bin/python

# host and port of each service, from the same variables the settings read
read -r PG_HOST PG_PORT < <($py - <<'PY'
import os
from urllib.parse import urlsplit
url = urlsplit(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/wacampaigns"))
print(url.hostname or "127.0.0.1", url.port or 5432)
PY
)
read -r REDIS_HOST REDIS_PORT < <($py - <<'PY'
import os
from urllib.parse import urlsplit
url = urlsplit(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
print(url.hostname or "127.0.0.1", url.port or 6379)
PY
)

reachable() { # host port
    $py -c "import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()" "$1" "$2" 2>/dev/null
}

wait_for() { # name host port
    for _ in $(seq 1 60); do
        reachable "$2" "$3" && return 0
        sleep 0.5
    done
    echo "$1 did not come up at $2:$3" >&2
    exit 1
}

is_local() { [ "$1" = "127.0.0.1" ] || [ "$1" = "localhost" ] || [ "$1" = "::1" ]; }

docker_engine() { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }

apt_install() {
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        log "installing $* from Debian packages"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
        return 0
    fi
    return 1
}

start_postgres() {
    if ! command -v pg_ctlcluster >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
        apt_install postgresql || return 1
        # A cluster we installed for local development: let local TCP clients in
        # without a password, like the default DATABASE_URL expects.
        for hba in /etc/postgresql/*/main/pg_hba.conf; do
            sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "$hba"
        done
    fi
    if command -v pg_ctlcluster >/dev/null 2>&1; then
        version="$(ls /etc/postgresql | sort -V | tail -1)"
        log "starting PostgreSQL $version"
        pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
        return 0
    fi
    return 1
}

start_redis() {
    if ! command -v redis-server >/dev/null 2>&1; then
        apt_install redis-server || return 1
    fi
    log "starting redis-server on $REDIS_PORT"
    mkdir -p var
    redis-server --daemonize yes --bind "$REDIS_HOST" --port "$REDIS_PORT" \
        --save "" --appendonly no --dir "$PWD/var" --logfile "$PWD/var/redis.log"
}

ensure() { # name host port start-function compose-service
    local name=$1 host=$2 port=$3 start=$4 service=$5
    if reachable "$host" "$port"; then
        return 0
    fi
    if ! is_local "$host"; then
        echo "$name is not reachable at $host:$port (a remote host: start it there)" >&2
        exit 1
    fi
    if $start; then
        wait_for "$name" "$host" "$port"
    elif docker_engine; then
        log "starting $name with docker compose"
        # Local development database: the default DATABASE_URL's user, no password.
        POSTGRES_USER=postgres POSTGRES_HOST_AUTH_METHOD=trust docker compose up -d "$service"
        wait_for "$name" "$host" "$port"
    else
        echo "$name is not running at $host:$port and could not be started:" \
            "install it (Debian: apt-get install $service), or run a Docker engine" >&2
        exit 1
    fi
}

ensure PostgreSQL "$PG_HOST" "$PG_PORT" start_postgres postgres
ensure Redis "$REDIS_HOST" "$REDIS_PORT" start_redis redis
