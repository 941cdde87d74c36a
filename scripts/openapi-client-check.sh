#!/usr/bin/env bash
# Generates a Python client from shared/openapi/openapi.json with
# openapi-python-client (pinned below, in a venv cached per version under
# ${XDG_CACHE_HOME:-~/.cache}/visgate-orchestrator/) and checks that the
# generator understood the document: no warning, and a typed create request
# (the body of create_deployment is the union of the two request models,
# not Any, and the models build the JSON the server takes). Run by `make lint`;
# an argument names another document.
set -euo pipefail
version=0.29.1
root=$(cd "$(dirname "$0")/.." && pwd)
doc=$(realpath "${1:-$root/shared/openapi/openapi.json}")
python=${PYTHON:-python3}
venv="${XDG_CACHE_HOME:-$HOME/.cache}/visgate-orchestrator/openapi-python-client-$version"
if ! command -v "$python" >/dev/null; then
	echo "$python not installed: skipping the generated-client check of the OpenAPI document"
	exit 0
fi
if [ ! -x "$venv/bin/openapi-python-client" ]; then
	rm -rf "$venv"
	"$python" -m venv "$venv"
	"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "openapi-python-client==$version"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
if ! out=$("$venv/bin/openapi-python-client" generate --path "$doc" \
	--meta none --output-path client 2>&1); then
	echo "$out"
	exit 1
fi
# The generator's only acceptable warning: no ruff on PATH to format its output.
if grep -v -e '^$' -e 'Generating client' -e 'Skipping Integration' -e 'ruff is not in PATH' \
	-e 'Warning(s) encountered while generating' -e 'If you believe this was a mistake' <<<"$out" | grep -q .; then
	echo "$out"
	echo "openapi-python-client warned about the document (above)"
	exit 1
fi
"$venv/bin/python" - <<'PY'
import datetime
import typing

from client.api.deployments import create_deployment
from client.models import CreateByCatalogName, CreateByHuggingFaceId

hints = typing.get_type_hints(create_deployment.sync_detailed)
body = hints["body"]
assert set(typing.get_args(body)) == {CreateByCatalogName, CreateByHuggingFaceId}, f"create body is {body!r}"
by_id = CreateByHuggingFaceId(hf_model_id="org/model", user_runpod_key="rpa_x", ttl_seconds=3600)
assert by_id.to_dict() == {"hf_model_id": "org/model", "user_runpod_key": "rpa_x", "ttl_seconds": 3600}, by_id.to_dict()
by_name = CreateByCatalogName(
    model_name="veo3", provider="fal", user_runpod_key="rpa_x",
    expires_at=datetime.datetime(2027, 6, 30, 12, tzinfo=datetime.timezone.utc),
)
d = by_name.to_dict()
assert d["model_name"] == "veo3" and d["expires_at"].startswith("2027-06-30T12:00:00"), d
fields = typing.get_type_hints(CreateByHuggingFaceId)
assert fields["hf_model_id"] is str and fields["user_runpod_key"] is str, fields
print("openapi-python-client: create_deployment(body=CreateByHuggingFaceId | CreateByCatalogName), typed models")
PY
