#!/usr/bin/env bash
# Installs Debian's Chromium for the headless documentation check
# (shared/openapi/browsercheck). Does nothing when /usr/bin/chromium exists.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
	exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null

if [ ! -x /usr/bin/chromium ]; then
	echo "install-chromium: /usr/bin/chromium is still missing after apt-get install" >&2
	exit 1
fi
