#!/usr/bin/env bash
# cp_roles.sh - roles and token files: saturnd generates the client,
# viewer and worker tokens (0600, >= 32 characters) in a 0700 state dir; a
# worker with the worker token trains a job; the worker token cannot
# submit or cancel and the viewer token can list but not submit or cancel
# (PERMISSION_DENIED, exit 3); SIGHUP re-reads the token files (the old
# client token is refused at once, the new one accepted); saturnd refuses
# to start on a token file others can read, a short token, duplicate
# tokens, and --no-auth on 0.0.0.0; a 0755 state dir is made 0700; the
# dashboard asks for the viewer or client token (401, WWW-Authenticate:
# Basic), /healthz stays open, /metrics is open unless --metrics-auth.
. "$(dirname "$0")/ps_lib.sh"

mode_of() { stat -c %a "$1"; }

# ---- start-up refusals (each saturnd must exit, not serve)
refused() { # DESCRIPTION NEEDLE saturnd-args...
    local what=$1 needle=$2
    shift 2
    timeout 20 "$SATURND" --listen 127.0.0.1:0 --log-level info "$@" >"$T/refuse.log" 2>&1
    local rc=$?
    if [ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q -- "$needle" "$T/refuse.log"; then
        pass "$what (exit $rc)"
    else
        fail "$what: exit $rc; log: $(cat "$T/refuse.log")"
    fi
}
mkdir -p "$T/r1"
chmod 0700 "$T/r1"
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$T/r1/long"
printf 'short-token\n' >"$T/r1/short"
chmod 0600 "$T/r1/long" "$T/r1/short"
cp "$T/r1/long" "$T/r1/world"
chmod 0644 "$T/r1/world"
refused "a world-readable token file is refused" "lets other users read" \
    --state-dir "$T/r1/s" --token-file "$T/r1/world"
cp "$T/r1/long" "$T/r1/group"
chmod 0640 "$T/r1/group"
if [ "$(id -u)" = 0 ]; then
    chown 65534 "$T/r1/group" # group-readable is accepted only when root owns the file
fi
refused "a group-readable token file (not root's) is refused" "lets other users read" \
    --state-dir "$T/r1/s" --viewer-token-file "$T/r1/group"
refused "a token shorter than 32 characters is refused" "at least 32 needed" \
    --state-dir "$T/r1/s" --worker-token-file "$T/r1/short"
refused "the same token for two roles is refused" "each role needs its own" \
    --state-dir "$T/r1/s" --token-file "$T/r1/long" --viewer-token-file "$T/r1/long"
refused "--no-auth on 0.0.0.0 is refused" "loopback only" \
    --state-dir "$T/r1/s" --no-auth --listen 0.0.0.0:0
mkdir -p "$T/open"
chmod 0755 "$T/open"

# ---- a 0755 state dir is made 0700; generated tokens
start_saturnd "$T/open" --http 127.0.0.1:0 --http-port-file "$T/open/http-port"
check "a 0755 state dir is made 0700 ($(mode_of "$T/open"))" test "$(mode_of "$T/open")" = 700
for f in token viewer-token worker-token; do
    check "$f generated, mode 0600, >= 32 characters" \
        bash -c "[ \"\$(stat -c %a '$T/open/$f')\" = 600 ] && [ \$(head -n 1 '$T/open/$f' | wc -c) -gt 32 ]"
done

# ---- a worker with the worker token trains a job
start_worker w0
check "the worker registers with the worker token" wait_until 20 jq_ok 'length == 1' \
    "$SATURN" workers --json
spec_file "$T/spec.json" name=roles model=mlp dataset=synthetic workers=1 epochs=1 batch_size=64
expect_exit 0 "the client token submits" "$SATURN" submit "$T/spec.json" --json
J=$(jq -r .job_id <<<"$OUT")
check "$J succeeds, trained by the worker-token worker" wait_until 300 \
    bash -c "[ \"\$('$SATURN' status $J --json | jq -r .state)\" = succeeded ]"

# ---- what each token may do
as() { SATURN_TOKEN_FILE=$1 "${@:2}"; }
expect_exit 3 "the worker token cannot submit" as "$WORKER_TOKEN_FILE" "$SATURN" submit "$T/spec.json"
contains "  ... PERMISSION_DENIED" "$ERR" "PERMISSION_DENIED: the worker token may not call"
expect_exit 3 "the worker token cannot cancel" as "$WORKER_TOKEN_FILE" "$SATURN" cancel "$J"
expect_exit 3 "the worker token cannot list" as "$WORKER_TOKEN_FILE" "$SATURN" list
expect_exit 0 "the viewer token lists" as "$VIEWER_TOKEN_FILE" "$SATURN" list --json
check "  ... and sees $J" jq -e ".[] | select(.id == \"$J\")" <<<"$OUT"
expect_exit 0 "the viewer token gets a job's status" as "$VIEWER_TOKEN_FILE" "$SATURN" status "$J"
expect_exit 0 "the viewer token lists workers" as "$VIEWER_TOKEN_FILE" "$SATURN" workers
expect_exit 3 "the viewer token cannot submit" as "$VIEWER_TOKEN_FILE" "$SATURN" submit "$T/spec.json"
contains "  ... PERMISSION_DENIED, with a hint" "$ERR" "needs the client token"
expect_exit 3 "the viewer token cannot cancel" as "$VIEWER_TOKEN_FILE" "$SATURN" cancel "$J"
check "the worker is still registered and idle" jq_ok '.[0].state == "idle"' "$SATURN" workers --json

# ---- the dashboard asks for the token
if command -v curl >/dev/null; then
    H=http://127.0.0.1:$(cat "$T/open/http-port")
    code() { curl -s -m 10 -o /dev/null -D "$T/h" -w '%{http_code}' "$@"; }
    check "GET / without a token -> 401" test "$(code "$H/")" = 401
    check "  ... WWW-Authenticate: Basic" grep -qi '^www-authenticate: basic' "$T/h"
    check "GET / with the viewer token as Basic password -> 200" \
        test "$(code -u "me:$(cat "$VIEWER_TOKEN_FILE")" "$H/")" = 200
    check "GET /jobs/$J with the client token (Bearer) -> 200" \
        test "$(code -H "Authorization: Bearer $(cat "$SATURN_TOKEN_FILE")" "$H/jobs/$J")" = 200
    check "GET / with the worker token -> 401" \
        test "$(code -u "me:$(cat "$WORKER_TOKEN_FILE")" "$H/")" = 401
    check "GET /jobs/$J/loss.svg without a token -> 401" test "$(code "$H/jobs/$J/loss.svg")" = 401
    check "GET /healthz without a token -> 200" test "$(code "$H/healthz")" = 200
    check "GET /metrics without a token -> 200 (open by default)" test "$(code "$H/metrics")" = 200
else
    note "curl missing: HTTP checks skipped"
fi

# ---- SIGHUP: rotation without a restart
cp "$SATURN_TOKEN_FILE" "$T/old-token"
chmod 0600 "$T/old-token"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$T/open/token.new"
chmod 0600 "$T/open/token.new"
mv "$T/open/token.new" "$T/open/token"
kill -HUP "$SATURND_PID"
check "saturnd logs the re-read" wait_until 10 grep -q "SIGHUP: re-read the token files" "$T/saturnd.log"
expect_exit 3 "the old client token is refused at once" as "$T/old-token" "$SATURN" list
contains "  ... UNAUTHENTICATED" "$ERR" "unauthenticated"
expect_exit 0 "the new client token is accepted" "$SATURN" list
check "the worker (worker token unchanged) keeps its lease" \
    jq_ok '.[0].state == "idle"' "$SATURN" workers --json
printf 'short\n' >"$T/open/viewer-token"
kill -HUP "$SATURND_PID"
check "a bad file on SIGHUP keeps the old tokens (logged)" \
    wait_until 10 grep -q "SIGHUP: tokens not changed" "$T/saturnd.log"
expect_exit 0 "  ... the client token still works" "$SATURN" list

# ---- guessing tokens: slowed down, logged at most once a second per peer ----
printf 'wrong-token-%040d\n' 0 >"$T/guess"
chmod 0600 "$T/guess"
NLOG0=$(grep -c "refused: .*failure(s) in a row" "$T/saturnd.log")
START=$(date +%s%3N)
for i in 1 2 3 4 5 6 7; do
    "$RPC_PROBE" "$SATURN_ADDR" "$T/guess" empty /saturn.v1.Client/ListJobs >/dev/null 2>&1
done
ELAPSED=$(($(date +%s%3N) - START))
NLOG=$(($(grep -c "refused: .*failure(s) in a row" "$T/saturnd.log") - NLOG0))
note "7 wrong-token calls took $ELAPSED ms and $NLOG log line(s)"
# The first 3 failures are answered at once, then after 100, 200, 400 and
# 800 ms: at least 1.5 s for the 7.
check "repeated wrong tokens are slowed down ($ELAPSED ms >= 1400 ms)" test "$ELAPSED" -ge 1400
check "  ... and logged at most once a second ($NLOG lines in $ELAPSED ms)" \
    test "$NLOG" -le $((ELAPSED / 1000 + 1))
expect_exit 0 "  ... while the right token from the same address is answered" "$SATURN" list
check "saturnd is alive" kill -0 "$SATURND_PID"
finish
