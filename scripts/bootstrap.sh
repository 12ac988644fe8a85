#!/usr/bin/env bash
# Prepares a checkout to run: virtualenv with the locked packages, PostgreSQL and
# Redis reachable (started when missing), database created and migrated.
# Safe to run again: each step does nothing when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*" >&2; }

find_python() {
    for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return
        fi
    done
    echo "Python 3.11 or newer is required (set PYTHON=/path/to/python3.11)" >&2
    exit 1
}

# --- virtualenv -------------------------------------------------------------
if [ ! -x .venv/bin/python ]; then
    log "creating virtualenv .venv"
    "$(find_python)" -m venv .venv
fi
stamp=.venv/.installed
want="$(cat pyproject.toml requirements.lock | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    log "installing packages (pinned by requirements.lock)"
    .venv/bin/python scripts/requirements.py --dev >.venv/requirements.txt
    .venv/bin/python -m pip install --quiet --disable-pip-version-check \
        -c requirements.lock -r .venv/requirements.txt
    echo "$want" >"$stamp"
fi

# --- services ---------------------------------------------------------------
scripts/services.sh

# --- browser for the browser test suite (tests/browser) ---------------------
# Debian's Chromium: Playwright's own browser download needs the internet.
if [ ! -x "${WAC_CHROMIUM:-/usr/bin/chromium}" ] && command -v apt-get >/dev/null 2>&1; then
    as_root=()
    [ "$(id -u)" = 0 ] || { command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null && as_root=(sudo -n); }
    if [ "$(id -u)" = 0 ] || [ ${#as_root[@]} -gt 0 ]; then
        log "installing chromium from Debian packages (for tests/browser)"
        "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        log "no /usr/bin/chromium and no root or sudo to install it: tests/browser will be skipped"
    fi
fi

# --- database ---------------------------------------------------------------
.venv/bin/python scripts/createdb.py
log "migrating"
.venv/bin/python manage.py migrate --no-input -v 0
