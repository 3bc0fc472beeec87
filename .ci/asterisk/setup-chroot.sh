#!/bin/sh
# setup-chroot.sh [ROOTDIR]   (root; idempotent)
#
# Builds (or reuses) a Debian sid chroot with Asterisk 22 at ROOTDIR
# (default /var/cache/callevents/asterisk-sid, outside the clone so later runs
# reuse it), installs the host's sipp (package sip-tester) and debootstrap when
# missing, and writes the test config from .ci/asterisk/conf/ into the chroot's
# /etc/asterisk-test/. Everything listens on 127.0.0.1 only.
# See ../shared/reference/peers.md §3.2.
#
# Exit codes: 0 ready; 2 usage / not root; 3 the chroot or Asterisk could not be
# built (sid changed, no network, no disk): callers should SKIP, loudly.
set -eu

R=${1:-${CALLEVENTS_ASTERISK_ROOT:-/var/cache/callevents/asterisk-sid}}
HERE=$(cd "$(dirname "$0")" && pwd)
CONF="$HERE/conf"

fail() {
	echo "" >&2
	echo "############################################################" >&2
	echo "## setup-chroot.sh: CANNOT BUILD THE ASTERISK CHROOT at $R" >&2
	echo "## $*" >&2
	echo "## (sid changed? no network? no disk?) -- Asterisk tests must SKIP" >&2
	echo "############################################################" >&2
	exit 3
}

[ "$(id -u)" = 0 ] || { echo "setup-chroot.sh: must run as root" >&2; exit 2; }

# Host tools: debootstrap (to build) and sipp (package sip-tester, to place calls).
need=""
command -v debootstrap >/dev/null 2>&1 || need="$need debootstrap"
command -v sipp >/dev/null 2>&1 || need="$need sip-tester"
if [ -n "$need" ]; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $need >/dev/null 2>&1 ||
		{ apt-get update -q >/dev/null 2>&1 || true
		  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $need; } ||
		fail "apt-get install$need failed on the host"
fi

# The Debian mirror URI that this machine's apt sources already name
# (override with CALLEVENTS_DEBIAN_MIRROR).
MIRROR=${CALLEVENTS_DEBIAN_MIRROR:-}
if [ -z "$MIRROR" ] && [ -r /etc/apt/sources.list.d/debian.sources ]; then
	MIRROR=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources | head -n1)
fi
if [ -z "$MIRROR" ] && [ -r /etc/apt/sources.list ]; then
	MIRROR=$(awk '$1=="deb"{print $2; exit}' /etc/apt/sources.list)
fi
MIRROR=${MIRROR:-http://deb.debian.org/debian}

if [ ! -x "$R/usr/sbin/asterisk" ]; then
	start=$(date +%s)
	mkdir -p "$(dirname "$R")" || fail "cannot create $(dirname "$R")"
	if [ ! -x "$R/usr/bin/apt-get" ]; then
		# A half-built tree from an interrupted debootstrap (it still has
		# ROOT/debootstrap/) is not reusable; anything else non-empty is not ours.
		if [ -d "$R" ] && [ -n "$(ls -A "$R")" ]; then
			[ -d "$R/debootstrap" ] || fail "$R exists, is not empty and is not a (partial) debootstrap tree; not touching it"
			mountpoint -q "$R/proc" && umount "$R/proc"
			rm -rf --one-file-system "$R"
		fi
		debootstrap --variant=minbase sid "$R" "$MIRROR" ||
			fail "debootstrap sid from $MIRROR failed"
	fi
	# No daemons started by package scripts; sid's Release may be "expired" for this clock.
	printf '#!/bin/sh\nexit 101\n' > "$R/usr/sbin/policy-rc.d"
	chmod +x "$R/usr/sbin/policy-rc.d"
	echo 'Acquire::Check-Valid-Until "false";' > "$R/etc/apt/apt.conf.d/99no-valid-until"
	chroot "$R" apt-get update -q || fail "apt-get update inside the chroot failed"
	chroot "$R" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends asterisk ||
		fail "apt-get install asterisk inside the chroot failed"
	echo "setup-chroot.sh: built $R in $(( $(date +%s) - start )) s"
fi

mountpoint -q "$R/proc" || mount -t proc proc "$R/proc" || fail "cannot mount /proc in $R"
mkdir -p "$R/var/run/asterisk" "$R/var/log/asterisk" "$R/var/spool/asterisk" "$R/var/lib/asterisk"

# The test config: our own tree, so the stock /etc/asterisk files are not involved.
mkdir -p "$R/etc/asterisk-test"
rm -f "$R/etc/asterisk-test/"*.conf
cp "$CONF"/*.conf "$R/etc/asterisk-test/"
# asterisk.conf names the module directory, which depends on the architecture:
# take it from the package's own asterisk.conf.
moddir=$(sed -n 's/^ *astmoddir *=> *//p' "$R/etc/asterisk/asterisk.conf" | head -n1)
[ -n "$moddir" ] && sed -i "s|^astmoddir *=>.*|astmoddir => $moddir|" "$R/etc/asterisk-test/asterisk.conf"

ver=$(chroot "$R" /usr/sbin/asterisk -V) || fail "asterisk -V failed inside $R"
echo "setup-chroot.sh: $ver at $R, config in $R/etc/asterisk-test"
case "$ver" in
"Asterisk 22."*) ;;
*) echo "setup-chroot.sh: WARNING: expected Asterisk 22.x (peers.md was verified with 22.10.1), got: $ver" >&2 ;;
esac
