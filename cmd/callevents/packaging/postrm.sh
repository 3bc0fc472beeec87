#!/bin/sh
# postrm of the callevents .deb. Purging removes the configuration (dpkg
# does, for the conffile) but keeps the user callevents and the database in
# /var/lib/callevents: Call Events and the delivery log are the operator's
# data, and files may still belong to the user.
set -e

if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
exit 0
