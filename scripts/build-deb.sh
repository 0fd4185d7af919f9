#!/bin/sh
# make deb: builds the Debian package with Debian's own tools
# (dpkg-buildpackage, debhelper) from a copy of the tree in OUT/src, so
# that nothing is written into the tree; the .deb, .changes and .buildinfo
# end up in OUT, then lintian checks them (an error fails the target).
# Installs the build dependencies and lintian when they are missing (root).
set -eu

out="$1"
top="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

need_root() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "build-deb.sh: $1; run as root (or install them with apt-get)" >&2
		exit 1
	fi
}

if ! command -v dpkg-buildpackage >/dev/null 2>&1 || ! command -v lintian >/dev/null 2>&1 ||
	! command -v dh >/dev/null 2>&1; then
	need_root "dpkg-dev, debhelper or lintian missing"
	echo "build-deb.sh: installing dpkg-dev debhelper lintian"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		dpkg-dev debhelper lintian
fi

version="$(dpkg-parsechangelog -l "$top/debian/changelog" -S Version)"
src="$out/src/fedgate-$version"
rm -rf "$out/src" "$out"/fedgate_* "$out"/fedgate-dbgsym_*
mkdir -p "$src"
# The files git knows of (committed or not, ignored ones left out): the
# package is built from what the tree holds now, without build folders.
(cd "$top" && git ls-files -z --cached --others --exclude-standard |
	xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
	tar --null -T - -cf -) | tar -xf - -C "$src"

if ! (cd "$src" && dpkg-checkbuilddeps) 2>/dev/null; then
	need_root "build dependencies missing ($(cd "$src" && dpkg-checkbuilddeps 2>&1 | sed 's/.*: //'))"
	echo "build-deb.sh: installing the build dependencies of debian/control"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get build-dep -y -qq --no-install-recommends "$src"
fi

echo "build-deb.sh: dpkg-buildpackage -us -uc -b in $src (log: $out/build.log)"
if ! (cd "$src" && nice dpkg-buildpackage -us -uc -b) >"$out/build.log" 2>&1; then
	tail -n 40 "$out/build.log" >&2
	echo "build-deb.sh: dpkg-buildpackage failed; the whole log is $out/build.log" >&2
	exit 1
fi
mv "$out"/src/fedgate_* "$out"/src/fedgate-dbgsym_* "$out"/ 2>/dev/null || true
rm -rf "$out/src"

changes="$(ls "$out"/fedgate_*.changes)"
echo "build-deb.sh: lintian $changes"
# Errors fail the target; warnings are printed for a person to judge.
lintian --fail-on error "$changes"
ls -1 "$out"/*.deb
