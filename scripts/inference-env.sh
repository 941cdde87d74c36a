#!/usr/bin/env bash
# The inference worker's Python environment (see inference/ and docs/worker.md).
#
#   scripts/inference-env.sh              create it once, then print the exports
#   scripts/inference-env.sh --if-present print the exports only if it exists
#                                         (never creates; prints nothing otherwise)
#
# The venv lives outside the clone, keyed by the lock's hash, so every clone
# on this machine shares it and a changed lock gets a new one:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/visgate-orchestrator/inference-<12 hex>/venv
# and the tiny models that inference/tools/make_tiny_models.py generates go
# beside it in tiny-models/ (regenerated when the generator changes).
# Use: eval "$(bash scripts/inference-env.sh)". Everything but the two export
# lines goes to stderr. PYTHON picks the interpreter (default python3, 3.11).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
lock="$root/inference/requirements.lock"
generator="$root/inference/tools/make_tiny_models.py"
python=${PYTHON:-python3}

log() { echo "inference-env: $*" >&2; }

key=$(sha256sum "$lock" | cut -c1-12)
base="${XDG_CACHE_HOME:-$HOME/.cache}/visgate-orchestrator/inference-$key"
venv="$base/venv"
tiny="$base/tiny-models"
venv_stamp="$venv/.visgate-complete"
tiny_stamp="$tiny/.visgate-generator"
generator_sum=$(sha256sum "$generator" | cut -d' ' -f1)

present() {
	[ -f "$venv_stamp" ] && [ -x "$venv/bin/python" ] &&
		[ -f "$tiny_stamp" ] && [ "$(cat "$tiny_stamp")" = "$generator_sum" ]
}

print_env() {
	printf 'export VISGATE_INFERENCE_VENV=%q\n' "$venv"
	printf 'export VISGATE_TINY_MODELS=%q\n' "$tiny"
}

case "${1:-}" in
--if-present)
	if present; then print_env; fi
	exit 0
	;;
"") ;;
*)
	log "unknown argument: $1 (use no argument, or --if-present)"
	exit 2
	;;
esac

mkdir -p "$base"
# One creator at a time: another clone may be creating the same env.
exec 9>"$base/.lock"
flock 9

if [ ! -f "$venv_stamp" ]; then
	version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
	if [ "$version" != "3.11" ]; then
		log "the lock is for Python 3.11; $python is $version (set PYTHON to a 3.11 interpreter)"
		exit 1
	fi
	log "creating $venv from inference/requirements.lock (torch with its CUDA wheels: about 4 GB)"
	start=$(date +%s)
	rm -rf "$venv"
	"$python" -m venv "$venv"
	# Every package pinned with its hashes; pip refuses anything else. The
	# lock is complete (every transitive dependency), so pip resolves
	# nothing: --no-deps keeps whatever pip `venv` hands out (23.0 to 26)
	# clear of pip bug #9644, where a dependency pulled in with extras
	# (runpod -> fastapi[all] -> uvicorn[standard]) was looked up without
	# the lock's pin. `pip check` then proves the set is consistent.
	"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
		--no-deps --require-hashes -r "$lock" >&2
	"$venv/bin/python" -m pip check >&2
	touch "$venv_stamp"
	log "venv ready in $(($(date +%s) - start)) s ($(du -sh "$venv" | cut -f1))"
else
	log "reusing $venv"
fi

if [ ! -f "$tiny_stamp" ] || [ "$(cat "$tiny_stamp")" != "$generator_sum" ]; then
	log "generating the tiny models into $tiny"
	start=$(date +%s)
	rm -rf "$tiny" "$tiny.tmp"
	"$venv/bin/python" "$generator" --out "$tiny.tmp" >&2
	echo "$generator_sum" >"$tiny.tmp/.visgate-generator"
	mv "$tiny.tmp" "$tiny"
	log "tiny models ready in $(($(date +%s) - start)) s"
fi

print_env
