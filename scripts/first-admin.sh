#!/bin/sh
# make run: the first time (no admin account yet), makes the administrator
# "admin" and says once how to sign in to the control panel. The password
# is $ADMIN_PASSWORD when set (ADMIN_PASSWORD=... make run), else a random
# one printed here and never again (change it: fedgate admin passwd admin).
set -eu
fedgate=$1
conf=$2
if [ "$("$fedgate" admin list -c "$conf" --json)" != "[]" ]; then
    exit 0
fi
if [ -n "${ADMIN_PASSWORD:-}" ]; then
    pw=$ADMIN_PASSWORD
    shown="the password you set in ADMIN_PASSWORD"
else
    pw=$(head -c 24 /dev/urandom | base64 | tr -d '/+=' | cut -c1-20)
    shown="password $pw (shown only now)"
fi
printf '%s\n' "$pw" | "$fedgate" admin add admin --role administrator -c "$conf" >/dev/null
addr=$("$fedgate" check -c "$conf" | sed -n 's/^admin = \([^ ;,]*\).*/\1/p' | head -n 1)
scheme=http
if "$fedgate" check -c "$conf" |
    awk '/^\[/ { s = $0 } s == "[admin]" && /^certificate = [^ ;]/ { f = 1 } END { exit !f }'; then
    scheme=https
fi
echo "control panel: $scheme://${addr:-127.0.0.1:5280}/ - sign in as admin with $shown"
