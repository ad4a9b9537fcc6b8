#!/bin/sh
exec /opt/meter/bin/meter-agent --config /opt/meter/etc/meter.ini "$@"
