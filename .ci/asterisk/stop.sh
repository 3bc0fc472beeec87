#!/bin/sh
# stop.sh [ROOTDIR]   (root) -- stop the Asterisk started by start.sh and
# unmount the chroot's /proc. Safe to run when nothing is running.
set -u
R=${1:-${CALLEVENTS_ASTERISK_ROOT:-/var/cache/callevents/asterisk-sid}}
RUNDIR=${CALLEVENTS_ASTERISK_RUNDIR:-/tmp/callevents-asterisk}
CFG=/etc/asterisk-test/asterisk.conf
pid=$(cat "$RUNDIR/asterisk.pid" 2>/dev/null || true)
if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
	chroot "$R" /usr/sbin/asterisk -C "$CFG" -rx 'core stop now' >/dev/null 2>&1 || kill "$pid" 2>/dev/null
	i=0
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 20 ]; do sleep 0.5; i=$((i + 1)); done
	kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
	echo "stop.sh: Asterisk (pid $pid) stopped"
fi
rm -f "$RUNDIR/asterisk.pid"
mountpoint -q "$R/proc" 2>/dev/null && umount "$R/proc"
exit 0
