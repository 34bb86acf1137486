#!/usr/bin/env bash
# What `make test` needs beyond Python: the AWS CLI v2 (Debian's `awscli`, /usr/bin/aws; v1 is
# .venv/bin/aws from PyPI), Debian's `chromium` (/usr/bin/chromium, which Playwright drives for
# the copies page's browser test) and node >= 20 with npm, for the AWS SDK for JavaScript v3 suite.
# Installs what is missing when run as root (CI is); otherwise says what to install and fails.
set -euo pipefail

missing=()
[ -x /usr/bin/aws ] || missing+=(awscli)
[ -x /usr/bin/chromium ] || missing+=(chromium)
# PostgreSQL 15 for the scale-out test backend (snapferry/localengines.py runs its initdb
# and pg_ctl as the `postgres` user the package creates).
[ -x "${SNAPFERRY_PG_BIN:-/usr/lib/postgresql/15/bin}/initdb" ] || missing+=(postgresql-15)

if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "test-deps: installing ${missing[*]} with apt-get"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "test-deps: missing Debian packages: ${missing[*]}" >&2
        echo "test-deps: install them (sudo apt-get install ${missing[*]}) and run again" >&2
        exit 1
    fi
fi
/usr/bin/aws --version | grep -q '^aws-cli/2\.' || {
    echo "test-deps: /usr/bin/aws is not the AWS CLI v2: $(/usr/bin/aws --version)" >&2
    exit 1
}

# Debian's own nodejs is too old for the SDK (it needs 20+), so there is nothing to apt-get.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "test-deps: node >= 20 and npm are needed for tests/clients/js; install them" >&2
    exit 1
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
    echo "test-deps: node $(node --version) is too old for tests/clients/js: 20 or later" >&2
    exit 1
fi
