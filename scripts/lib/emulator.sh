# Shared by the emulator scripts: start a server in its own session (so that
# stop can signal its whole process group, children included), wait until it
# is up, stop it, report on it. Sourced, not run.
#
# The sourcing script sets: pidfile, logfile, host, start_timeout, and
# defines log (a message to stderr), up (true when the server serves) and
# print_env (the export line). It then calls launch with the command line.

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

# already_running succeeds (printing the export line) when our emulator is
# up; stops a stale group; fails when something else holds the port.
already_running() {
	local id
	if id=$(pgid); then
		if up; then
			log "already running (process group $id) at $host"
			print_env
			return 0
		fi
		log "process group $id exists but $host does not serve; stopping it first"
		stop
	fi
	if up; then
		log "something else already serves at $host; not starting another emulator"
		return 2
	fi
	return 1
}

# start_with runs "$@" (a function that prepares and calls launch) unless
# our emulator already serves; it refuses when something else holds the port.
start_with() {
	local rc=0
	already_running || rc=$?
	case $rc in
	0) return 0 ;;
	2) return 1 ;;
	esac
	"$@"
}

# launch starts "$@" as the leader of a new session and waits until up.
launch() {
	mkdir -p "$(dirname "$pidfile")"
	# The new session's leader writes its own pid (= its process group id),
	# then becomes the command.
	setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$pidfile" "$@" \
		>"$logfile" 2>&1 </dev/null &

	local deadline=$((SECONDS + start_timeout))
	while ((SECONDS < deadline)); do
		if [ -f "$pidfile" ] && pgid >/dev/null && up; then
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
		if up; then
			log "running (process group $id) at $host"
			return 0
		fi
		log "process group $id alive but $host does not serve"
		return 1
	fi
	log "not running"
	return 3
}
