#!/bin/sh
# record.sh [OUTDIR]   (root) -- re-record every AMI transcript in
# service/ami/testdata/ from a real Asterisk 22 (loopback only).
#
# Builds/reuses the chroot (setup-chroot.sh; exit 3 = cannot build), restarts
# Asterisk so channel numbering starts at 0, then per scenario: connects a fresh
# AMI session (ami_record.py, user "callevents", read = call), starts the sipp
# callee(s), places one sipp call from 210 "Alice Ng", waits for the call to
# settle, and closes the session. Leaves nothing running.
#
# Env: CALLEVENTS_ASTERISK_ROOT (chroot), DIALPLAN_SCENARIOS (scenarios also
# recorded with the read = call,dialplan user as <name>-dialplan.ami; default
# "answer chanunavail"), ONLY (space-separated subset of scenario names),
# KEEP_WORK=1 (keep the sipp output directory).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-$HERE/../../service/ami/testdata}
OUT=$(mkdir -p "$OUT" && cd "$OUT" && pwd)
R=${CALLEVENTS_ASTERISK_ROOT:-/var/cache/callevents/asterisk-sid}
DIALPLAN_SCENARIOS=${DIALPLAN_SCENARIOS-answer chanunavail}
ONLY=${ONLY:-}
SC=$HERE/scenarios
PY=/usr/bin/python3
WORK=$(mktemp -d /tmp/callevents-record.XXXXXX)

"$HERE/setup-chroot.sh" "$R"
"$HERE/stop.sh" "$R" >/dev/null
"$HERE/start.sh" "$R"

PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	"$HERE/stop.sh" "$R" >/dev/null || true
}
trap cleanup EXIT INT TERM

# callee FILE PORT MEDIAPORT -> starts one sipp UAS for one call, remembers its pid
callee() {
	sipp -sf "$SC/$1" -i 127.0.0.1 -p "$2" -mp "$3" -m 1 -nostdin -timeout 20 \
		>"$WORK/uas-$2.out" 2>&1 &
	PIDS="$PIDS $!"
}

# scenario NAME UAC_FILE SERVICE CALLEE_SPEC...   (CALLEE_SPEC = file:port:mediaport)
scenario() {
	name=$1 uac=$2 svc=$3
	shift 3
	if [ -n "$ONLY" ] && ! echo " $ONLY " | grep -q " $name "; then return 0; fi
	recs=""
	users="callevents:$name.ami"
	echo " $DIALPLAN_SCENARIOS " | grep -q " $name " && users="$users callevents-dialplan:$name-dialplan.ami"
	for u in $users; do
		user=${u%%:*} file=${u#*:}
		$PY "$HERE/ami_record.py" --user "$user" --secret callevents "$WORK/$file" >"$WORK/$file.log" 2>&1 &
		recs="$recs $!:$file"
		PIDS="$PIDS $!"
		i=0
		until grep -q 'logged in' "$WORK/$file.log"; do
			i=$((i + 1)); [ $i -lt 50 ] || { cat "$WORK/$file.log" >&2; exit 1; }
			sleep 0.1
		done
	done
	PIDS_UAS=""
	for c in "$@"; do
		callee "$(echo "$c" | cut -d: -f1)" "$(echo "$c" | cut -d: -f2)" "$(echo "$c" | cut -d: -f3)"
		PIDS_UAS="$PIDS_UAS $!"
	done
	sleep 0.3
	rc=0
	sipp 127.0.0.1:5060 -sf "$SC/$uac" -s "$svc" -i 127.0.0.1 -p 5061 -mp 6000 -m 1 -nostdin -timeout 20 \
		>"$WORK/uac-$name.out" 2>&1 || rc=$?
	for p in $PIDS_UAS; do wait "$p" || { echo "record.sh: $name: a sipp callee failed (see $WORK)" >&2; rc=1; }; done
	sleep 1.5 # let the last Hangup / Bridge events arrive
	for r in $recs; do
		kill "${r%%:*}" 2>/dev/null || true
		wait "${r%%:*}" 2>/dev/null || true
		cp "$WORK/${r#*:}" "$OUT/${r#*:}"
	done
	PIDS=""
	n=$(tr -d '\r' <"$OUT/$name.ami" | grep -c '^Event: ' || true)
	if [ $rc -ne 0 ]; then
		echo "record.sh: $name: sipp caller exit $rc (see $WORK/uac-$name.out)" >&2
		exit 1
	fi
	echo "record.sh: $name.ami: $n events"
	sleep 0.5
}

scenario answer      uac_any.xml      211 uas_answer.xml:5071:6100
scenario busy        uac_any.xml      212 uas_486.xml:5072:6200
scenario noanswer    uac_any.xml      213 uas_ring.xml:5073:6300
scenario cancel      uac_cancel.xml   213 uas_ring.xml:5073:6300
scenario congestion  uac_any.xml      214 uas_503.xml:5074:6400
scenario chanunavail uac_any.xml      219
scenario local       uac_wait_bye.xml 211 uas_answer_bye.xml:5071:6100
scenario ringgroup   uac_any.xml      215 uas_answer.xml:5071:6100 uas_ring.xml:5073:6300

if [ -n "${KEEP_WORK:-}" ]; then echo "record.sh: sipp output kept in $WORK"; else rm -rf "$WORK"; fi
echo "record.sh: transcripts in $OUT"
