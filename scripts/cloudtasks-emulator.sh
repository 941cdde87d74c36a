#!/usr/bin/env bash
# Builds, starts, stops and reports on a local Cloud Tasks emulator
# (github.com/aertje/cloud-tasks-emulator, pinned in tools/go.mod).
#
#   scripts/cloudtasks-emulator.sh start    # build if needed, start (or find running), print the export line
#   scripts/cloudtasks-emulator.sh stop     # stop its process group
#   scripts/cloudtasks-emulator.sh status   # running or not; exit 0 only when the port accepts connections
#   scripts/cloudtasks-emulator.sh env      # print the export line
#   scripts/cloudtasks-emulator.sh build    # only build the binary
#
# Use it as:  eval "$(scripts/cloudtasks-emulator.sh start)"
# Runs from any directory: paths are relative to the repository root.
#
# Settings (environment):
#   CLOUD_TASKS_PORT     port on 127.0.0.1 (default 8123)
#   CLOUD_TASKS_QUEUES   space-separated queue paths to create at start, each
#                        projects/P/locations/L/queues/Q (default none). Such
#                        queues retry a failing task up to 100 times for up to
#                        an hour; tests create their own queues through the API.
#   EMULATOR_DIR         where the binary, pid file and log live (default .emulators)
#
# The emulator keeps everything in memory: task names stay taken until it
# restarts. It runs in its own session (setsid) and stop signals the whole
# process group.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

port=${CLOUD_TASKS_PORT:-8123}
dir=${EMULATOR_DIR:-.emulators}
host=127.0.0.1:$port
bin=$dir/bin/cloud-tasks-emulator
pidfile=$dir/cloudtasks.pid
logfile=$dir/cloudtasks.log
start_timeout=30

log() { echo "cloudtasks-emulator: $*" >&2; }

# accepts reports whether something accepts TCP connections on the port.
accepts() {
	(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
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

print_env() { echo "export CLOUD_TASKS_EMULATOR_HOST=$host"; }

# build compiles the emulator from the tools module when the binary is
# missing or older than the module's pins.
build() {
	mkdir -p "$dir/bin"
	[ -f "$dir/.gitignore" ] || printf '*\n' >"$dir/.gitignore"
	if [ -x "$bin" ] && [ "$bin" -nt tools/go.mod ] && [ "$bin" -nt tools/go.sum ]; then
		return 0
	fi
	command -v go >/dev/null || {
		log "go not found"
		return 1
	}
	log "building $bin from tools/go.mod"
	local out
	out=$(cd "$dir/bin" && pwd)/cloud-tasks-emulator
	go build -C tools -o "$out" github.com/aertje/cloud-tasks-emulator >&2
}

start() {
	if id=$(pgid); then
		if accepts; then
			log "already running (process group $id) at $host"
			print_env
			return 0
		fi
		log "process group $id exists but $host does not accept connections; stopping it first"
		stop
	fi
	if accepts; then
		log "something else already listens at $host; not starting another emulator"
		return 1
	fi
	build

	local args=(-host 127.0.0.1 -port "$port")
	local q
	for q in ${CLOUD_TASKS_QUEUES:-}; do
		args+=(-queue "$q")
	done

	# The new session's leader writes its own pid (= its process group id),
	# then becomes the emulator.
	setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$pidfile" \
		"$bin" "${args[@]}" \
		>"$logfile" 2>&1 </dev/null &

	local deadline=$((SECONDS + start_timeout))
	while ((SECONDS < deadline)); do
		if [ -f "$pidfile" ] && pgid >/dev/null && accepts; then
			log "ready at $host (process group $(cat "$pidfile"), log $dir/cloudtasks.log)"
			print_env
			return 0
		fi
		if [ -f "$pidfile" ] && ! pgid >/dev/null; then
			log "emulator exited during start; last lines of $logfile:"
			tail -n 20 "$logfile" >&2 || true
			rm -f "$pidfile"
			return 1
		fi
		sleep 0.1
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
		if accepts; then
			log "running (process group $id) at $host"
			return 0
		fi
		log "process group $id alive but $host does not accept connections"
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
build) build ;;
*)
	echo "usage: $0 start|stop|status|env|build" >&2
	exit 2
	;;
esac
