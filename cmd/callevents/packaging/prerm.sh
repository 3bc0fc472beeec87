#!/bin/sh
# prerm of the callevents .deb: a removal stops and disables the service
# (an upgrade leaves it running; postinst restarts it).
set -e

if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
	systemctl disable --now callevents.service || true
fi
exit 0
