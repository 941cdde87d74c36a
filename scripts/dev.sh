#!/usr/bin/env bash
# `make dev`: the Google Cloud runtime on this machine. Starts the Firestore
# and Cloud Tasks emulators, then every function in its own
# functions-framework process behind one front door on PORT (default 8080),
# with a bridge that delivers Firestore writes to DeploymentChanged as the
# protobuf CloudEvents Eventarc sends. Ctrl-C or SIGTERM stops every process
# it started, the emulators' java children included.
#
#   SIMULATE=1 WEBHOOK_ALLOW_PRIVATE=1 make dev    # offline, as with make run
set -euo pipefail
cd "$(dirname "$0")/.."

export GCP_PROJECT_ID="${GCP_PROJECT_ID:-demo-visgate}"
export GCP_LOCATION="${GCP_LOCATION:-europe-west1}"
export TASKS_QUEUE="${TASKS_QUEUE:-provision}"
export DATA_DIR="${DATA_DIR:-.data/dev}"
export CLOUD_TASKS_QUEUES="projects/$GCP_PROJECT_ID/locations/$GCP_LOCATION/queues/$TASKS_QUEUE"

child=""
stop_all() {
	trap - INT TERM EXIT
	if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then
		kill -TERM "$child" 2>/dev/null || true
		wait "$child" 2>/dev/null || true
	fi
	bash scripts/cloudtasks-emulator.sh stop >&2 || true
	bash scripts/firestore-emulator.sh stop >&2 || true
}
trap stop_all INT TERM EXIT

eval "$(bash scripts/firestore-emulator.sh start)"
eval "$(bash scripts/cloudtasks-emulator.sh start)"

mkdir -p .emulators/bin
go build -o .emulators/bin/dev ./functions/dev
.emulators/bin/dev &
child=$!
wait "$child"
