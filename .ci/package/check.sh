#!/usr/bin/env bash
# CI step: builds the .deb (cmd/callevents/packaging/build.sh), installs it
# with dpkg -i, runs the installed binary, checks the systemd unit offline
# (systemd-analyze verify, and its exposure score), and removes and purges
# the package again, so the step can run again. Run it alone as root:
#
#   .ci/package/check.sh
#
# The machine may be a container without a running systemd: nothing here
# needs one. The maintainer scripts skip systemctl when systemd is not
# running (/run/systemd/system missing).
set -euo pipefail
cd "$(dirname "$0")/../.."
export DEBIAN_FRONTEND=noninteractive

log() { printf '\n== package: %s\n' "$*"; }
die() { printf 'package check FAILED: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (dpkg -i)"
command -v dpkg >/dev/null || die "needs dpkg (a Debian machine)"
if ! command -v systemd-analyze >/dev/null; then
  log "apt-get install systemd (for systemd-analyze)"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends systemd >/dev/null
fi

unit=/usr/lib/systemd/system/callevents.service
created_user=false
getent passwd callevents >/dev/null || created_user=true
# A run that stopped half-way may have left the package installed.
if dpkg-query -W -f='${Status}' callevents 2>/dev/null | grep -q 'ok installed'; then
  log "purging a callevents package left by an earlier run"
  dpkg --purge callevents >/dev/null
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
log "build"
deb=$(cmd/callevents/packaging/build.sh "$out")
dpkg-deb --info "$deb" | sed -n 's/^ \(Package\|Version\|Architecture\):/  \1:/p'

log "dpkg -i $(basename "$deb")"
dpkg -i "$deb"

log "/usr/bin/callevents version"
version=$(/usr/bin/callevents version)
echo "  $version"
[[ $version =~ ^callevents\ (v[0-9]|devel) ]] || die "unexpected version line: $version"
if rev=$(git rev-parse --short=7 HEAD 2>/dev/null); then
  [[ $version == *"($rev"* ]] || die "the version does not name the checked-out commit $rev: $version"
fi

log "what the package installed"
getent passwd callevents | grep -q ':/var/lib/callevents:/usr/sbin/nologin$' || die "no system user callevents with home /var/lib/callevents and no shell"
[ "$(stat -c '%U:%G %a' /etc/callevents/callevents.env)" = "root:callevents 640" ] ||
  die "/etc/callevents/callevents.env is $(stat -c '%U:%G %a' /etc/callevents/callevents.env), want root:callevents 640"
dpkg-query -W -f='${Conffiles}\n' callevents | grep -q '/etc/callevents/callevents.env' || die "callevents.env is not a conffile"
[ "$(stat -c '%U:%G %a' /var/lib/callevents)" = "callevents:callevents 750" ] || die "/var/lib/callevents is not the service user's"
# The state directory works for the service user, with the unit's DSN.
runuser -u callevents -- /usr/bin/callevents migrate --db sqlite:/var/lib/callevents/callevents.db --log-level warn

log "systemd-analyze verify $unit"
# verify exits 0 on unknown or unparsable directives, and only says so.
verify=$(systemd-analyze verify "$unit" 2>&1) || die "systemd-analyze verify failed: $verify"
[ -z "$verify" ] || die "systemd-analyze verify complained: $verify"

log "systemd-analyze security --offline=true $unit"
# --threshold is on a 0–100 scale: 20 is an exposure of 2.0 ("OK").
systemd-analyze security --offline=true --threshold=20 "$unit" | tail -n 1 ||
  die "the unit's exposure rose above 2.0: see systemd-analyze security --offline=true $unit"

log "dpkg -r, then --purge"
dpkg -r callevents >/dev/null
[ ! -e /usr/bin/callevents ] && [ ! -e "$unit" ] || die "dpkg -r left the binary or the unit"
[ -e /etc/callevents/callevents.env ] || die "dpkg -r removed the conffile (only --purge should)"
dpkg --purge callevents >/dev/null
[ ! -e /etc/callevents ] || die "dpkg --purge left /etc/callevents"
# The package keeps the user and /var/lib/callevents (the operator's data);
# this check takes away what it made itself.
rm -rf /var/lib/callevents
if $created_user; then userdel callevents; fi
log "ok"
