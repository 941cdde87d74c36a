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
#   CLOUD_TASKS_EMULATOR_BIN  the binary (default EMULATOR_DIR/bin/cloud-tasks-emulator):
#                        `make test` keeps one build in .emulators/bin while
#                        its pid file and log live in a directory of its own
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
bin=${CLOUD_TASKS_EMULATOR_BIN:-$dir/bin/cloud-tasks-emulator}
pidfile=$dir/cloudtasks.pid
logfile=$dir/cloudtasks.log
start_timeout=30

log() { echo "cloudtasks-emulator: $*" >&2; }

# accepts reports whether something accepts TCP connections on the port.
accepts() {
	(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

print_env() { echo "export CLOUD_TASKS_EMULATOR_HOST=$host"; }

# build compiles the emulator from the tools module when the binary is
# missing or older than the module's pins.
build() {
	mkdir -p "$(dirname "$bin")" "$dir"
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
	out=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
	go build -C tools -o "$out" github.com/aertje/cloud-tasks-emulator >&2
}

# up: something accepts TCP connections on the port.
up() { accepts; }

# shellcheck source=lib/emulator.sh
. "$root/scripts/lib/emulator.sh"

start_cloudtasks() {
	build
	local args=(-host 127.0.0.1 -port "$port")
	local q
	for q in ${CLOUD_TASKS_QUEUES:-}; do
		args+=(-queue "$q")
	done
	launch "$bin" "${args[@]}"
}

start() { start_with start_cloudtasks; }

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
