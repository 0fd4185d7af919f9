#!/bin/sh
# Installs the Debian packages fedgate needs to build, run and test.
# Idempotent: asks apt only for what is missing, so a second run is quick.
set -eu

PKGS="build-essential cmake pkg-config clang clang-format libclang-rt-dev
libevent-dev libssl-dev openssl libexpat1-dev libinih-dev libidn2-dev
libidn-dev libcmocka-dev libsqlite3-dev libjansson-dev libsodium-dev
libunbound-dev libgsasl-dev python3 python3-pytest iproute2
prosody python3-slixmpp dnsmasq-base chromium nagios-check-xmppng go-sendxmpp
man-db systemd unbound ldnsutils dns-root-data profanity tmux
postgresql libpq-dev redis-server libhiredis-dev"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

# node and npm run the browser tests; any install of them will do (Debian's
# nodejs and npm when there is none).
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"

# playwright-core (exact version in tests/browser/package-lock.json) into
# tests/browser/node_modules; it drives Debian's chromium, so no browser
# is downloaded.
browser_modules() {
    dir="$(cd "$(dirname "$0")/.." && pwd)/tests/browser"
    [ -d "$dir/node_modules/playwright-core" ] && return 0
    echo "deps.sh: npm ci in tests/browser (playwright-core)"
    (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
}

if [ -z "$missing" ]; then
    browser_modules
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "deps.sh: missing packages:$missing" >&2
    echo "deps.sh: run as root (or: sudo apt-get install$missing)" >&2
    exit 1
fi

echo "deps.sh: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing

# Prosody is a test peer, started by the tests themselves: a system instance
# would hold the XMPP ports, so make sure none runs.
case "$missing" in
*prosody*)
    if [ -x /etc/init.d/prosody ]; then
        /etc/init.d/prosody stop >/dev/null 2>&1 || true
    fi
    ;;
esac

browser_modules
