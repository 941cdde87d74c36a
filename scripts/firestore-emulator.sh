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

# pgid prints the process group id from the pid file when that group still
# has a live process.
pgid() {
	[ -f "$pidfile" ] || return 1
	local id
	id=$(cat "$pidfile")
	[[ $id =~ ^[0-9]+$ ]] || return 1
	kill -0 -- "-$id" 2>/dev/null || return 1
	echo "$id"
}

print_env() { echo "export FIRESTORE_EMULATOR_HOST=$host"; }

start() {
	if id=$(pgid); then
		if answers; then
			log "already running (process group $id) at $host"
			print_env
			return 0
		fi
		log "process group $id exists but $host does not answer; stopping it first"
		stop
	fi
	if answers; then
		log "something else already answers at $host; not starting another emulator"
		return 1
	fi
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

	# The new session's leader writes its own pid (= its process group id),
	# then becomes gcloud.
	setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$pidfile" \
		gcloud emulators firestore start --host-port="$host" --quiet \
		>"$logfile" 2>&1 </dev/null &

	local deadline=$((SECONDS + start_timeout))
	while ((SECONDS < deadline)); do
		if answers; then
			log "ready at $host (process group $(cat "$pidfile"), log $logfile)"
			print_env
			return 0
		fi
		if [ -f "$pidfile" ] && ! pgid >/dev/null; then
			log "emulator exited during start; last lines of $logfile:"
			tail -n 20 "$logfile" >&2 || true
			rm -f "$pidfile"
			return 1
		fi
		sleep 0.2
	done
	log "not ready after ${start_timeout}s; last lines of $logfile:"
	tail -n 20 "$logfile" >&2 || true
	stop
	return 1
}

stop() {
	local id
	if ! id=$(pgid); then
		rm -f "$pidfile"
		log "not running"
		return 0
	fi
	kill -TERM -- "-$id" 2>/dev/null || true
	for _ in $(seq 50); do
		kill -0 -- "-$id" 2>/dev/null || break
		sleep 0.2
	done
	if kill -0 -- "-$id" 2>/dev/null; then
		log "process group $id still alive after 10s; sending KILL"
		kill -KILL -- "-$id" 2>/dev/null || true
	fi
	rm -f "$pidfile"
	log "stopped (process group $id)"
}

status() {
	local id
	if id=$(pgid); then
		if answers; then
			log "running (process group $id) at $host"
			return 0
		fi
		log "process group $id alive but $host does not answer"
		return 1
	fi
	log "not running"
	return 3
}

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
