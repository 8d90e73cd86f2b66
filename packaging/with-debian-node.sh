#!/bin/sh
# Runs a command with Debian 12's own node (nodejs 18.20 from bookworm), to check that tsplice
# runs on the node its Debian package depends on:
#
#   packaging/with-debian-node.sh node scripts/run-tests.js --unit
#   packaging/with-debian-node.sh node bin/tsplice.js --help
#
# The packages are fetched with apt-get download and unpacked with dpkg -x under
# $TSPLICE_CACHE/debian-node (nothing is installed). Debian's node loads parts of itself from
# /usr/share/nodejs at run time, so the command runs as root in a private mount namespace with
# the unpacked /usr/share overlaid on the host's.
set -eu
cache="${TSPLICE_CACHE:-$HOME/.cache/tsplice}/debian-node"
root="$cache/root"
if [ ! -x "$root/usr/bin/node" ]; then
	mkdir -p "$cache/debs"
	# Debian's own version, not another repository's newer nodejs the host may have (NodeSource).
	version=$(apt-cache madison nodejs | awk '$3 ~ /deb12/ { print $3; exit }')
	[ -n "$version" ] || { echo "no Debian 12 nodejs in the apt sources" >&2; exit 1; }
	(cd "$cache/debs" && apt-get download "nodejs=$version" "libnode108=$version" libc-ares2 node-cjs-module-lexer node-acorn node-undici)
	for deb in "$cache"/debs/*.deb; do dpkg -x "$deb" "$root"; done
fi
exec unshare -m sh -c 'mount -t overlay overlay -o "lowerdir=$0/usr/share:/usr/share" /usr/share &&
	LD_LIBRARY_PATH="$0/usr/lib/x86_64-linux-gnu" PATH="$0/usr/bin:$PATH" exec "$@"' "$root" "$@"
