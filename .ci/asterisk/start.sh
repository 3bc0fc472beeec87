#!/bin/sh
# start.sh [ROOTDIR]   (root) -- start Asterisk inside the chroot built by
# setup-chroot.sh, on loopback only: SIP udp 127.0.0.1:5060, AMI tcp 127.0.0.1:5038.
# Foreground Asterisk (-f) in the background; its pid goes to $RUNDIR/asterisk.pid
# and its console output to $RUNDIR/asterisk.out. Waits until fully booted and
# AMI answers. Stop with stop.sh.
set -eu
R=${1:-${CALLEVENTS_ASTERISK_ROOT:-/var/cache/callevents/asterisk-sid}}
RUNDIR=${CALLEVENTS_ASTERISK_RUNDIR:-/tmp/callevents-asterisk}
CFG=/etc/asterisk-test/asterisk.conf
mkdir -p "$RUNDIR"

[ -x "$R/usr/sbin/asterisk" ] || { echo "start.sh: no Asterisk in $R (run setup-chroot.sh)" >&2; exit 3; }
if [ -s "$RUNDIR/asterisk.pid" ] && kill -0 "$(cat "$RUNDIR/asterisk.pid")" 2>/dev/null; then
	echo "start.sh: already running (pid $(cat "$RUNDIR/asterisk.pid"))"
	exit 0
fi
mountpoint -q "$R/proc" || mount -t proc proc "$R/proc"
mkdir -p "$R/var/run/asterisk"
rm -f "$R/var/run/asterisk/asterisk.ctl" "$R/var/run/asterisk/asterisk.pid"

# chroot execs asterisk, so $! is Asterisk's own pid.
chroot "$R" /usr/sbin/asterisk -C "$CFG" -f -n -vvv </dev/null >"$RUNDIR/asterisk.out" 2>&1 &
echo $! >"$RUNDIR/asterisk.pid"

i=0
until chroot "$R" /usr/sbin/asterisk -C "$CFG" -rx 'core waitfullybooted' >/dev/null 2>&1; do
	i=$((i + 1))
	if [ $i -gt 60 ] || ! kill -0 "$(cat "$RUNDIR/asterisk.pid")" 2>/dev/null; then
		echo "start.sh: Asterisk did not come up; tail of $RUNDIR/asterisk.out:" >&2
		tail -20 "$RUNDIR/asterisk.out" >&2
		exit 1
	fi
	sleep 0.5
done
/usr/bin/python3 - <<'PY' || { echo "start.sh: AMI does not answer on 127.0.0.1:5038" >&2; exit 1; }
import socket
s = socket.create_connection(("127.0.0.1", 5038), timeout=5)
assert s.recv(100).startswith(b"Asterisk Call Manager/")
PY
echo "start.sh: Asterisk running (pid $(cat "$RUNDIR/asterisk.pid")), AMI 127.0.0.1:5038, SIP udp 127.0.0.1:5060"
