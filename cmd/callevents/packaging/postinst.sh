#!/bin/sh
# postinst of the callevents .deb: the system user and group callevents,
# its state directory and the group of the env file; on an upgrade, a
# restart of a running service. A first install does not start the
# service: set up /etc/callevents/callevents.env, then
# `systemctl enable --now callevents` (README "Installing on a server").
set -e

if [ "$1" = configure ]; then
	if ! getent group callevents >/dev/null; then
		groupadd --system callevents
	fi
	if ! getent passwd callevents >/dev/null; then
		useradd --system --gid callevents --home-dir /var/lib/callevents --no-create-home \
			--shell /usr/sbin/nologin --comment "callevents service" callevents
	fi
	# systemd creates it too (StateDirectory=), but `clients add` may need
	# it before the first start.
	install -d -o callevents -g callevents -m 0750 /var/lib/callevents
	# dpkg unpacks the env file as root:root; the group may read it (it can
	# hold a database password). A group an admin chose is kept.
	if [ "$(stat -c %G /etc/callevents/callevents.env)" = root ]; then
		chgrp callevents /etc/callevents/callevents.env
		chmod 0640 /etc/callevents/callevents.env
	fi
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload
		if [ -n "$2" ]; then
			systemctl try-restart callevents.service || true
		fi
	fi
fi
exit 0
