#!/usr/bin/env bash
# `make test`: every test that can run on this machine, with the set-up the
# tests need, then a summary of what was skipped and why.
#
#   scripts/test.sh [packages...]      # default ./... and the worker's tests
#
# 1. Starts a Firestore emulator (needs gcloud and Java) and a Cloud Tasks
#    emulator (built from tools/go.mod) of its own, on free ports with their
#    own pid files and logs, so that it works beside `make dev` or another
#    `make test`; both are stopped when it ends, also on failure or Ctrl-C.
# 2. Creates the inference worker's Python environment when inference/ is
#    present and the environment is missing (`make inference-env`), and
#    exports VISGATE_INFERENCE_VENV and VISGATE_TINY_MODELS to the tests.
# 2b. Uses the Terraform providers' mirror (`make terraform-providers`) when
#    it is there, and makes it when REQUIRE_TERRAFORM=1, so that the tests
#    run the real terraform validate and plan.
# 3. go vet, then the Go tests with -race through scripts/testsummary,
#    then the worker's tests (`make test-inference`).
# 4. Prints what was set up, what was not and how to get it, and every
#    skipped test grouped by reason.
#
# 3a. Builds the worker's image (`make inference-image`, buildah as root)
#    and exports VISGATE_INFERENCE_IMAGE, so that the end to end also runs
#    the worker from the image RunPod would pull.
#
# Where a tool is missing, the tests that need it skip with a message. CI
# sets REQUIRE_EMULATORS=1, REQUIRE_BROWSER=1, REQUIRE_INFERENCE=1 and
# REQUIRE_IMAGE=1: then a missing tool is a failure, here and in the tests.
# A set-up that was tried and failed (make inference-env, make
# inference-image) fails the run whatever is required: it never looks like
# a pass that merely skipped.
#
# Settings (environment): GO (default go), ARTIFACTS_DIR (when set, the raw
# `go test -json` stream is kept there as go-test.json).
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 1
GO=${GO:-go}
MAKE=${MAKE:-make}
packages=("$@")
everything=0 # the worker's tests run with the whole Go suite only
if [ ${#packages[@]} -eq 0 ]; then
	packages=(./...)
	everything=1
fi

run_dir=$(mktemp -d "${TMPDIR:-/tmp}/orchestrator-test.XXXXXX") || exit 1
keep_run_dir=0
setup=()       # one line per piece of set-up: what runs where, or what is missing and how to get it
setup_failed=() # set-up that was tried and failed: the run fails, even when nothing requires it
started=()     # "script port dir" of each emulator this run started

say() { echo "make test: $*" >&2; }

# stop_emulators stops every emulator this run started (each is a process
# group of its own: gcloud, its script and java for Firestore).
stop_emulators() {
	local e script port dir
	for e in "${started[@]}"; do
		read -r script port dir <<<"$e"
		FIRESTORE_PORT=$port CLOUD_TASKS_PORT=$port EMULATOR_DIR=$dir \
			bash "scripts/$script" stop >/dev/null 2>&1 ||
			say "could not stop the emulator of $dir (see its pid file)"
	done
	started=()
}

# sweep_emulators stops every emulator whose pid file lies under the run's
# directory. The tests' temporary directories are there too (TMPDIR), so
# this also stops an emulator a test started for itself (functions/app's
# readiness test) when Ctrl-C killed the test before its clean-up ran.
sweep_emulators() {
	local pidfile dir base port
	while IFS= read -r pidfile; do
		dir=$(dirname "$pidfile")
		base=$(basename "$pidfile")
		case $base in
		firestore-*.pid)
			port=${base#firestore-}
			FIRESTORE_PORT=${port%.pid} EMULATOR_DIR=$dir bash scripts/firestore-emulator.sh stop
			;;
		cloudtasks.pid)
			EMULATOR_DIR=$dir bash scripts/cloudtasks-emulator.sh stop
			;;
		esac >/dev/null 2>&1
	done < <(find "$run_dir" -name '*.pid' 2>/dev/null)
}

cleanup() {
	trap '' INT TERM # a second Ctrl-C must not cut the clean-up short
	stop_emulators
	sweep_emulators
	if [ "$keep_run_dir" = 1 ]; then
		say "emulator logs kept in $run_dir"
	else
		rm -rf "$run_dir"
	fi
}
trap cleanup EXIT
trap 'say interrupted; exit 130' INT
trap 'say terminated; exit 143' TERM

# free_port prints a port on 127.0.0.1 that nothing accepts connections on,
# below the kernel's range for outgoing connections (32768 and up).
free_port() {
	local p
	for _ in $(seq 200); do
		p=$((20000 + RANDOM % 12000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# start_emulator NAME SCRIPT starts an emulator with its own port and
# directory, trying another port when the chosen one was taken meanwhile,
# and evals the export line it prints.
start_emulator() {
	local name=$1 script=$2 port dir out
	for _ in 1 2 3; do
		port=$(free_port) || return 1
		dir=$run_dir/$name-$port
		started+=("$script $port $dir")
		if out=$(FIRESTORE_PORT=$port CLOUD_TASKS_PORT=$port EMULATOR_DIR=$dir \
			CLOUD_TASKS_EMULATOR_BIN="$root/.emulators/bin/cloud-tasks-emulator" \
			bash "scripts/$script" start 2>"$dir.start.log"); then
			eval "$out"
			say "$name emulator on 127.0.0.1:$port, process group $(cat "$dir"/*.pid 2>/dev/null)"
			return 0
		fi
		# The start failed: a port taken meanwhile, or the tool does not run.
		FIRESTORE_PORT=$port CLOUD_TASKS_PORT=$port EMULATOR_DIR=$dir bash "scripts/$script" stop >/dev/null 2>&1
		unset 'started[${#started[@]}-1]'
		if ! grep -q "something else already serves\|Address already in use\|address already in use" "$dir.start.log" "$dir"/*.log 2>/dev/null; then
			break
		fi
	done
	tail -n 5 "$dir.start.log" >&2
	return 1
}

# missing records a piece of set-up that cannot be done here: a failure when
# the REQUIRE flag is set, else a line of the final summary.
missing() {
	local flag=$1 what=$2
	if [ "${!flag:-}" = 1 ]; then
		say "$what"
		say "$flag=1 forbids skipping: stopping"
		exit 1
	fi
	setup+=("$what")
}

# --- go vet first: no emulator for code that does not compile
"$GO" vet "${packages[@]}" || exit 1
"$GO" build -o "$run_dir/testsummary" ./scripts/testsummary || exit 1

# --- the Firestore emulator
inherited_fs=${FIRESTORE_EMULATOR_HOST:-}
unset FIRESTORE_EMULATOR_HOST
how_fs="install the Google Cloud CLI (https://cloud.google.com/sdk/docs/install) with its Firestore emulator (gcloud components install cloud-firestore-emulator, or the apt package google-cloud-cli-firestore-emulator) and Java 17 or newer"
if ! command -v gcloud >/dev/null; then
	missing REQUIRE_EMULATORS "Firestore emulator: gcloud not found; $how_fs"
elif ! command -v java >/dev/null; then
	missing REQUIRE_EMULATORS "Firestore emulator: java not found (the emulator needs Java 17 or newer, e.g. apt-get install openjdk-17-jre-headless)"
elif start_emulator firestore firestore-emulator.sh; then
	setup+=("Firestore emulator: $FIRESTORE_EMULATOR_HOST (this run's own; stopped at the end)")
else
	keep_run_dir=1
	missing REQUIRE_EMULATORS "Firestore emulator: did not start (logs in $run_dir); $how_fs"
fi
if [ -z "${FIRESTORE_EMULATOR_HOST:-}" ] && [ -n "$inherited_fs" ]; then
	export FIRESTORE_EMULATOR_HOST=$inherited_fs
	setup+=("Firestore emulator: using $inherited_fs from the environment")
fi

# --- the Cloud Tasks emulator
inherited_ct=${CLOUD_TASKS_EMULATOR_HOST:-}
unset CLOUD_TASKS_EMULATOR_HOST
mkdir -p .emulators/bin
if start_emulator cloudtasks cloudtasks-emulator.sh; then
	setup+=("Cloud Tasks emulator: $CLOUD_TASKS_EMULATOR_HOST (this run's own; stopped at the end)")
else
	keep_run_dir=1
	missing REQUIRE_EMULATORS "Cloud Tasks emulator: did not build or start (logs in $run_dir); it is built from tools/go.mod with go, which needs the Go module proxy once"
fi
if [ -z "${CLOUD_TASKS_EMULATOR_HOST:-}" ] && [ -n "$inherited_ct" ]; then
	export CLOUD_TASKS_EMULATOR_HOST=$inherited_ct
	setup+=("Cloud Tasks emulator: using $inherited_ct from the environment")
fi

# --- Chromium (the documentation's browser tests find it themselves)
if [ -n "${CHROMIUM_PATH:-}" ] || [ -x /usr/bin/chromium ] || command -v chromium >/dev/null; then
	setup+=("Chromium: ${CHROMIUM_PATH:-$(command -v chromium || echo /usr/bin/chromium)}")
else
	missing REQUIRE_BROWSER "Chromium: not found; run scripts/install-chromium.sh (Debian package chromium) or set CHROMIUM_PATH"
fi

# --- the inference worker's Python environment
inference=absent
worker="skipped: inference/ is not in this checkout"
if [ ! -d inference ]; then
	setup+=("Inference worker: inference/ is not in this checkout; nothing to set up")
elif ! "$MAKE" -n inference-env >/dev/null 2>&1; then
	worker="skipped: no make inference-env target"
	missing REQUIRE_INFERENCE "Inference worker: no make inference-env target in this checkout"
else
	say "the inference worker's Python environment (created once per lock file: a large download the first time)"
	if env_out=$("$MAKE" --no-print-directory -s inference-env); then
		eval "$(grep -E '^export VISGATE_[A-Z_]+=' <<<"$env_out")"
		inference=ready
		setup+=("Inference worker: ${VISGATE_INFERENCE_VENV:-(no venv exported)}")
	else
		# A set-up that was tried and failed is a failure, never a skip.
		worker="NOT RUN: make inference-env failed"
		setup_failed+=("Inference worker: make inference-env FAILED (see above; it needs Python 3.11 with venv, and PyPI once)")
		missing REQUIRE_INFERENCE "Inference worker: make inference-env failed (see above; it needs Python 3.11 with venv, and PyPI once)"
	fi
fi

# --- the inference worker's image (the same lock, as RunPod runs it)
image="skipped: inference/ is not in this checkout"
if [ -d inference ] && [ "$everything" = 0 ] && [ "${REQUIRE_IMAGE:-}" != 1 ]; then
	image="not built: only some Go packages were asked for (REQUIRE_IMAGE=1 builds it)"
elif [ -d inference ] || [ "${REQUIRE_IMAGE:-}" = 1 ]; then
	if ! command -v buildah >/dev/null 2>&1 && ! { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }; then
		image="skipped: neither buildah nor a Docker engine"
		missing REQUIRE_IMAGE "Inference image: neither buildah nor a running Docker engine is here (Debian: apt-get install buildah mmdebstrap, as root)"
	elif ! command -v buildah >/dev/null 2>&1; then
		image="skipped: only docker is here, and the tests run the image with buildah"
		missing REQUIRE_IMAGE "Inference image: the tests run the image with buildah (apt-get install buildah), which is missing"
	elif [ "$(id -u)" -ne 0 ]; then
		image="skipped: buildah runs images here as root only"
		missing REQUIRE_IMAGE "Inference image: buildah builds and runs the image as root only (--isolation chroot); run make test as root"
	else
		say "the inference worker's image (built once per lock and src/: a large build the first time)"
		if img_out=$(INFERENCE_IMAGE_ENGINE=buildah "$MAKE" --no-print-directory -s inference-image); then
			eval "$(grep -E '^export VISGATE_[A-Z_]+=' <<<"$img_out")"
			image="built: $VISGATE_INFERENCE_IMAGE"
			setup+=("Inference image: $VISGATE_INFERENCE_IMAGE ($VISGATE_INFERENCE_IMAGE_ENGINE)")
		else
			image="NOT BUILT: make inference-image failed"
			setup_failed+=("Inference image: make inference-image FAILED (see above)")
			missing REQUIRE_IMAGE "Inference image: make inference-image failed (see above)"
		fi
	fi
fi

# --- the Terraform providers (the real init, validate and plan)
# The mirror is reused when complete. It is made here only when
# REQUIRE_TERRAFORM=1 (making it needs registry.terraform.io, which not every
# machine reaches); otherwise its absence is a line of the summary and the
# real-terraform tests (functions_terraform_plan_test.go) are not built: they
# need -tags terraformreal, set here with the mirror or REQUIRE_TERRAFORM=1.
go_tags=()
[ "${REQUIRE_TERRAFORM:-}" = 1 ] && go_tags=(-tags terraformreal)
not_run="the real validate and plan (go test -tags terraformreal .) are not run"
if ! command -v terraform >/dev/null; then
	missing REQUIRE_TERRAFORM "Terraform: not installed; $not_run (https://developer.hashicorp.com/terraform/install)"
elif tf_out=$(bash scripts/terraform-providers.sh --if-present) && [ -n "$tf_out" ]; then
	eval "$(grep -E '^export VISGATE_TERRAFORM_MIRROR=' <<<"$tf_out")"
	setup+=("Terraform providers: $VISGATE_TERRAFORM_MIRROR")
	go_tags=(-tags terraformreal)
elif [ "${REQUIRE_TERRAFORM:-}" = 1 ]; then
	say "the Terraform providers' mirror (made once per set of pinned versions)"
	if tf_out=$("$MAKE" --no-print-directory -s terraform-providers); then
		eval "$(grep -E '^export VISGATE_TERRAFORM_MIRROR=' <<<"$tf_out")"
		setup+=("Terraform providers: $VISGATE_TERRAFORM_MIRROR")
	else
		setup_failed+=("Terraform providers: make terraform-providers FAILED (see above; it needs registry.terraform.io once)")
		missing REQUIRE_TERRAFORM "Terraform providers: make terraform-providers failed (see above)"
	fi
else
	setup+=("Terraform providers: no mirror; $not_run (make terraform-providers makes the mirror, from registry.terraform.io)")
fi

# --- the Go tests
module=$("$GO" list -m)
json=/dev/null
if [ -n "${ARTIFACTS_DIR:-}" ]; then
	mkdir -p "$ARTIFACTS_DIR"
	json=$ARTIFACTS_DIR/go-test.json
fi
# tee -i and testsummary ignore Ctrl-C: go test stops, they report what it
# said until then.
mkdir -p "$run_dir/tmp"
TMPDIR=$run_dir/tmp "$GO" test ${go_tags[@]+"${go_tags[@]}"} -race -count=1 -timeout 15m -json "${packages[@]}" |
	tee -i "$json" | "$run_dir/testsummary" -trim "$module/"
status=("${PIPESTATUS[@]}")
go_ok=0
[ "${status[0]}" = 0 ] && [ "${status[2]}" = 0 ] && go_ok=1

# --- the worker's tests
worker_ok=1
if [ "$inference" = ready ] && [ "$everything" = 0 ]; then
	worker="skipped: only some Go packages were asked for"
elif [ "$inference" = ready ]; then
	if "$MAKE" --no-print-directory test-inference 2>&1 | tee -i "$run_dir/inference.log"; then
		worker="passed ($(grep -Eo '[0-9]+ passed.*' "$run_dir/inference.log" | tail -n 1 | tr -d '=' | sed 's/ *$//'))"
	else
		worker="FAILED (see above)"
		worker_ok=0
	fi
fi

echo
echo "== Set-up"
for line in "${setup[@]}"; do
	echo "   $line"
done
echo "== Inference worker tests (ruff, pytest): $worker"
echo "== Inference image: $image"
for line in "${setup_failed[@]}"; do
	echo "== SET-UP FAILED: $line"
done
if [ "$go_ok" = 1 ] && [ "$worker_ok" = 1 ] && [ ${#setup_failed[@]} -eq 0 ]; then
	echo "== make test: PASS"
	exit 0
fi
echo "== make test: FAIL"
exit 1
