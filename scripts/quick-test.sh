#!/usr/bin/env bash
# The quick test: every endpoint in order against a running server, then it
# follows the deployment until it is ready and its webhook delivered.
#
#   SIMULATE=1 make run &
#   scripts/quick-test.sh
#
# BASE (http://127.0.0.1:8080) and KEY (test-api-key-12345; with or without
# a leading "Bearer ") can be overridden. Without WEBHOOK_URL, against a
# server on this machine, the script runs scripts/webhookreceiver on a free
# loopback port, verifying each webhook's signature with the key's signing
# secret, and stops it at the end: the server must accept loopback webhooks,
# as it does with SIMULATE=1 (or WEBHOOK_ALLOW_PRIVATE=1). Against a server
# elsewhere WEBHOOK_URL defaults to https://example.com/hook. WAIT_SECONDS (60) bounds the wait for ready;
# MODEL (stabilityai/sdxl-turbo) is the Hugging Face id to deploy.
# Exits 0 when the deployment is ready and its webhook delivered.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

BASE="${BASE:-http://127.0.0.1:8080}"
BASE="${BASE%/}"
KEY="${KEY:-test-api-key-12345}"
shopt -s nocasematch
[[ $KEY == "bearer "* ]] && KEY="${KEY:7}"
shopt -u nocasematch
KEY="${KEY#"${KEY%%[![:space:]]*}"}" # trim leading blanks
AUTH="Authorization: Bearer ${KEY}"
WAIT_SECONDS="${WAIT_SECONDS:-60}"
MODEL="${MODEL:-stabilityai/sdxl-turbo}"

# call CURL-ARGS...: runs curl, sets BODY and CODE, prints both.
call() {
	local out
	if ! out=$(curl -sS --max-time 10 -w '\n%{http_code}' "$@"); then
		echo "curl failed: is the server running at $BASE?"
		exit 1
	fi
	BODY="${out%$'\n'*}"
	BODY="${BODY%$'\n'}"
	CODE="${out##*$'\n'}"
	printf '%s\nHTTP %s\n' "$BODY" "$CODE"
}

# field NAME: the first string value of "NAME" in BODY.
field() { printf '%s' "$BODY" | grep -o "\"$1\":\"[^\"]*\"" | head -n 1 | sed 's/^.*:"//;s/"$//'; }

tmp=$(mktemp -d)
receiver_pid=""
cleanup() {
	if [[ -n $receiver_pid ]]; then
		kill "$receiver_pid" 2>/dev/null
		wait "$receiver_pid" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

echo "1. Health:" && call "$BASE/health"
echo && echo "2. Root:" && call "$BASE/"
echo && echo "3. Readiness:" && call "$BASE/readiness"

host="${BASE#*://}"
host="${host%%/*}"
case $host in
127.* | localhost | localhost:* | "[::1]"*) ;;
*) WEBHOOK_URL="${WEBHOOK_URL:-https://example.com/hook}" ;; # a receiver here is out of its reach
esac

if [[ -z ${WEBHOOK_URL:-} ]]; then
	echo && echo "   Webhook receiver (scripts/webhookreceiver, signing secret from GET /v1/webhook-secret):"
	call -H "$AUTH" "$BASE/v1/webhook-secret" >/dev/null
	secret=$(field webhook_secret)
	if [[ $CODE != 200 || -z $secret ]]; then
		echo "   GET /v1/webhook-secret answered HTTP $CODE: $BODY"
		exit 1
	fi
	if ! go build -o "$tmp/webhookreceiver" ./scripts/webhookreceiver; then
		echo "   could not build scripts/webhookreceiver"
		exit 1
	fi
	WEBHOOK_SECRET="$secret" "$tmp/webhookreceiver" -listen 127.0.0.1:0 >"$tmp/receiver.log" 2>&1 &
	receiver_pid=$!
	for _ in $(seq 50); do
		grep -q '^listening on ' "$tmp/receiver.log" && break
		sleep 0.1
	done
	WEBHOOK_URL=$(sed -n 's/^listening on //p' "$tmp/receiver.log")
	if [[ -z $WEBHOOK_URL ]]; then
		echo "   the webhook receiver did not start:" && cat "$tmp/receiver.log"
		exit 1
	fi
	echo "   listening on $WEBHOOK_URL"
fi

echo && echo "4. POST deployment:"
call -X POST "$BASE/v1/deployments" -H "Content-Type: application/json" -H "$AUTH" \
	-d '{"hf_model_id":"'"$MODEL"'","user_runpod_key":"rpa_test","user_webhook_url":"'"$WEBHOOK_URL"'","gpu_tier":"A40"}'
if [[ $CODE != 202 ]]; then
	if [[ $CODE == 422 && -n $receiver_pid ]]; then
		echo "The server refuses a webhook to this machine: start it with SIMULATE=1 (or WEBHOOK_ALLOW_PRIVATE=1),"
		echo "or give WEBHOOK_URL=https://... a receiver you run elsewhere."
	fi
	exit 1
fi
DEP_ID=$(field deployment_id)

echo && echo "5. GET $DEP_ID:" && call -H "$AUTH" "$BASE/v1/deployments/$DEP_ID"

echo && echo "6. Until ready and the webhook delivered (at most ${WAIT_SECONDS}s):"
status="" delivered="" last=""
deadline=$((SECONDS + WAIT_SECONDS))
while ((SECONDS < deadline)); do
	out=$(curl -sS --max-time 10 -H "$AUTH" "$BASE/v1/deployments/$DEP_ID") || break
	BODY=$out
	status=$(field status)
	delivered=$(printf '%s' "$out" | sed -n 's/.*"delivered":\(true\|false\).*/\1/p')
	if [[ $status != "$last" ]]; then
		echo "   $(date +%T) $status"
		last=$status
	fi
	case $status in
	ready) [[ $delivered == true ]] && break ;;
	failed) [[ $delivered == true || -z $receiver_pid ]] && break ;;
	webhook_failed | deleted) break ;;
	esac
	sleep 0.5
done
printf '   %s\n' "$(printf '%s' "$BODY" | grep -o '"webhook":{[^}]*}')"
if [[ -n $receiver_pid ]]; then
	echo "   the receiver got:" && sed -n 's/^/   /;/verified\|REJECTED/p' "$tmp/receiver.log"
fi

echo && echo "7. 401 test:" && call "$BASE/v1/deployments/$DEP_ID"
echo && echo "8. 404 test:" && call -H "$AUTH" "$BASE/v1/deployments/dep_fake_123"
echo
if [[ $status == ready && $delivered == true ]]; then
	echo "OK: $DEP_ID is ready and its webhook was delivered."
	echo "Follow it: curl -s -H \"Authorization: Bearer \$KEY\" $BASE/v1/deployments/$DEP_ID"
	exit 0
fi
echo "NOT OK: $DEP_ID is ${status:-unknown} (webhook delivered: ${delivered:-unknown}) after ${WAIT_SECONDS}s."
echo "Its logs say why: curl -s -H \"Authorization: Bearer \$KEY\" $BASE/v1/deployments/$DEP_ID"
exit 1
