#!/usr/bin/env bash
# Starts, stops and reports on a local Firestore emulator (gcloud, Java 17).
#
#   scripts/firestore-emulator.sh start    # start (or find running), print the export line
#   scripts/firestore-emulator.sh stop     # stop the whole process group (gcloud, script, java)
#   scripts/firestore-emulator.sh status   # running or not; exit 0 only when it answers
#   scripts/firestore-emulator.sh env      # print the export line
#
# Use it as:  eval "$(scripts/firestore-emulator.sh start)"
#
# Settings (environment):
#   FIRESTORE_PORT   port on 127.0.0.1 (default 8686)
#   EMULATOR_DIR     where the pid file and log live (default .emulators at the repository root)
#
# gcloud starts a shell script that starts java: killing gcloud alone orphans
# both. The emulator therefore runs in its own session (setsid), and stop
# signals the whole process group.
set -euo pipefail

port=${FIRESTORE_PORT:-8686}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${EMULATOR_DIR:-$root/.emulators}
host=127.0.0.1:$port
pidfile=$dir/firestore-$port.pid
logfile=$dir/firestore-$port.log
start_timeout=30

log() { echo "firestore-emulator: $*" >&2; }

answers() {
	[ "$(curl -fsS --max-time 1 "http://$host/" 2>/dev/null)" = "Ok" ]
}

print_env() { echo "export FIRESTORE_EMULATOR_HOST=$host"; }

up() { answers; }

# shellcheck source=lib/emulator.sh
. "$root/scripts/lib/emulator.sh"

start_firestore() {
	command -v gcloud >/dev/null || {
		log "gcloud not found"
		return 1
	}
	command -v curl >/dev/null || {
		log "curl not found"
		return 1
	}
	mkdir -p "$dir"
	[ -f "$dir/.gitignore" ] || printf '*\n' >"$dir/.gitignore"
	launch gcloud emulators firestore start --host-port="$host" --quiet
}

start() { start_with start_firestore; }

case ${1:-} in
start) start ;;
stop) stop ;;
status) status ;;
env) print_env ;;
*)
	echo "usage: $0 start|stop|status|env" >&2
	exit 2
	;;
esac
