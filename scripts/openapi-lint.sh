#!/usr/bin/env bash
# Lints shared/openapi/openapi.json with Redocly CLI (version pinned by
# tools/redocly/package-lock.json, installed with `npm ci` from the npm
# registry), recommended rules (tools/redocly/redocly.yaml). Fails on any
# error or warning; what stays is in tools/redocly/.redocly.lint-ignore.yaml
# with its reason. Without npm it says so and skips, as `make lint` does for
# terraform.
set -euo pipefail
cd "$(dirname "$0")/../tools/redocly"
if ! command -v npm >/dev/null; then
	echo "npm not installed: skipping the Redocly lint of the OpenAPI document"
	exit 0
fi
npm ci --no-audit --no-fund --silent
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
out=$(./node_modules/.bin/redocly lint --format=stylish ../../shared/openapi/openapi.json 2>&1) || {
	echo "$out"
	exit 1
}
if grep -qE '^\s+[0-9]+:[0-9]+\s+(error|warning)' <<<"$out"; then
	echo "$out"
	echo "redocly: the OpenAPI document has warnings: fix them, or add them to tools/redocly/.redocly.lint-ignore.yaml with a reason"
	exit 1
fi
grep -E 'valid|ignored' <<<"$out" || true
