#!/usr/bin/env bash
# The seed's quick test (section 4): every endpoint in order against a running
# server. BASE and KEY can be overridden:
#   BASE=http://127.0.0.1:8080 KEY=test-api-key-12345 scripts/quick-test.sh
set -uo pipefail
BASE="${BASE:-http://127.0.0.1:8080}"
KEY="${KEY:-test-api-key-12345}"
AUTH="Authorization: Bearer ${KEY}"

echo "1. Health:" && curl -s "$BASE/health"
echo && echo "2. Root:" && curl -s "$BASE/"
echo && echo "3. Readiness:" && curl -s "$BASE/readiness"
echo && echo "4. POST deployment:"
RESP=$(curl -s -X POST "$BASE/v1/deployments" -H "Content-Type: application/json" -H "$AUTH" \
  -d '{"hf_model_id":"stabilityai/sdxl-turbo","user_runpod_key":"rpa_test","user_webhook_url":"https://example.com/hook","gpu_tier":"A40"}')
echo "$RESP"
DEP_ID=$(printf '%s' "$RESP" | sed -n 's/.*"deployment_id":"\([^"]*\)".*/\1/p')
echo && echo "5. GET $DEP_ID:" && curl -s -H "$AUTH" "$BASE/v1/deployments/$DEP_ID"
echo && echo "6. 401 test:" && curl -s -o /dev/null -w "%{http_code}" "$BASE/v1/deployments/$DEP_ID"
echo && echo "7. 404 test:" && curl -s -o /dev/null -w "%{http_code}" -H "$AUTH" "$BASE/v1/deployments/dep_fake_123"
echo
