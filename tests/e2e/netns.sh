#!/bin/sh
# Runs a command inside a network namespace of its own, with only loopback
# up, and removes the namespace afterwards. Every end-to-end test runs this
# way so that it can bind the real ports (5269, 5222) and never reaches any
# other host. Temporary files go to a folder of the run's own (TMPDIR),
# removed when the command succeeds and kept, with its path printed, when
# it fails: repeated runs no longer fill /tmp, and a failure's daemon logs
# and configurations stay for a look.
set -eu
if [ "$(id -u)" -ne 0 ]; then
    echo "netns.sh: end-to-end tests need root (ip netns); run them as root" >&2
    exit 1
fi
ns="fgtest-$$-$(date +%s%N | tail -c 7)"
# Processes run with `ip netns exec` see /etc/netns/NS/resolv.conf as
# /etc/resolv.conf: the test bed's DNS server answers on 127.0.0.53 there.
mkdir -p "/etc/netns/$ns"
echo "nameserver 127.0.0.53" > "/etc/netns/$ns/resolv.conf"
ip netns add "$ns"
run_tmp=$(mktemp -d /tmp/fgrun-XXXXXX)
# Like /tmp: daemons that drop to their own users make files there too.
chmod 1777 "$run_tmp"
rc=1
cleanup() {
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns delete "$ns" 2>/dev/null || true
    rm -rf "/etc/netns/$ns"
    if [ "$rc" -eq 0 ]; then
        rm -rf "$run_tmp"
    else
        echo "netns.sh: the run failed; its temporary files are kept in $run_tmp" >&2
    fi
}
trap cleanup EXIT INT TERM
ip netns exec "$ns" ip link set lo up
set +e
TMPDIR=$run_tmp ip netns exec "$ns" "$@"
rc=$?
exit $rc
