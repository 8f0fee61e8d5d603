#!/usr/bin/env bash
# cp_badinput.sh - every bad input gets a clear status and exit code, and
# saturnd keeps serving after each one (checked with a status call):
# spec errors (unknown key, wrong type, out of range, unknown model) refused
# with the field named, by the CLI and by saturnd itself; missing/wrong
# token -> UNAUTHENTICATED; unknown job -> NOT_FOUND; oversized message ->
# RESOURCE_EXHAUSTED; bytes that are not a message -> INVALID_ARGUMENT;
# unregistered methods -> UNIMPLEMENTED; export for no job -> NOT_FOUND;
# worker methods without a worker session -> PERMISSION_DENIED; health
# needs no token.
. "$(dirname "$0")/lib.sh"

start_saturnd "$T/state" --max-message-bytes 1048576 --lease-ms 500
expect_exit 0 "submit a good job" "$SATURN" submit --model mlp --dataset synthetic --workers 1 \
    --epochs 10000

serving() {
    kill -0 "$SATURND_PID" && "$SATURN" status job-1 --json >/dev/null
}
still_serving() { check "  ... and saturnd still serves a status call" serving; }

spec() { # NAME JSON: writes a spec file
    printf '%s\n' "$2" >"$T/$1.json"
}
spec unknown_key '{"model": "mlp", "dataset": "synthetic", "lrate": 0.1}'
spec wrong_type '{"model": "mlp", "dataset": "synthetic", "wbits": "four"}'
spec out_of_range '{"model": "mlp", "dataset": "synthetic", "wbits": 9}'
spec unknown_model '{"model": "resnet9000", "dataset": "synthetic"}'
spec not_json '{"model": "mlp", '
spec odd_batch '{"model": "mlp", "dataset": "synthetic", "workers": 3, "batch_size": 128}'

# Refused by the CLI's own check (same parser), before the network.
for case in unknown_key:lrate wrong_type:wbits out_of_range:wbits unknown_model:model \
    odd_batch:batch_size; do
    name=${case%%:*} field=${case#*:}
    expect_exit 4 "CLI refuses spec with $name" "$SATURN" submit "$T/$name.json"
    contains "  ... naming the field \"$field\"" "$ERR" "\"$field\""
done
expect_exit 4 "CLI refuses --wbits 9" "$SATURN" submit --model mlp --dataset synthetic --wbits 9
contains "  ... naming the field" "$ERR" '"wbits"'

# Refused by saturnd: the spec goes as it is (--no-local-check).
for case in unknown_key:lrate wrong_type:wbits out_of_range:wbits unknown_model:model \
    odd_batch:batch_size not_json:spec; do
    name=${case%%:*} field=${case#*:}
    expect_exit 4 "saturnd refuses spec with $name (INVALID_ARGUMENT)" \
        "$SATURN" submit "$T/$name.json" --no-local-check
    contains "  ... status INVALID_ARGUMENT" "$ERR" "INVALID_ARGUMENT"
    [ "$field" = spec ] || contains "  ... naming the field \"$field\"" "$ERR" "\"$field\""
    still_serving
done
check "no bad spec was stored" jq_ok 'length == 1' "$SATURN" list --json

# Tokens.
expect_exit 3 "no token -> exit 3" env -u SATURN_TOKEN_FILE "$SATURN" status job-1
contains "  ... the CLI says unauthenticated" "$ERR" "unauthenticated"
still_serving
echo wrong-token >"$T/wrong"
expect_exit 3 "wrong token -> exit 3" "$SATURN" status job-1 --token-file "$T/wrong"
contains "  ... the CLI says unauthenticated" "$ERR" "unauthenticated: invalid bearer token"
still_serving
expect_exit 3 "unreadable token file -> exit 3" "$SATURN" list --token-file "$T/missing"
OUTP=$("$RPC_PROBE" "$SATURN_ADDR" - garbage /saturn.v1.Client/GetJob)
contains "garbage without a token: auth comes first" "$OUTP" "UNAUTHENTICATED"
still_serving

# Unknown jobs.
for cmd in status cancel watch; do
    expect_exit 2 "$cmd of an unknown job -> NOT_FOUND, exit 2" "$SATURN" $cmd job-999
    contains "  ... the CLI says NOT_FOUND" "$ERR" "NOT_FOUND"
done
expect_exit 2 "a malformed job id -> NOT_FOUND" "$SATURN" status 'job-1; DROP TABLE jobs'
still_serving

# The wire: oversized, not a message, unregistered, issue 4.
OUTP=$("$RPC_PROBE" "$SATURN_ADDR" "$SATURN_TOKEN_FILE" oversize 2097152)
contains "a 2 MiB message against a 1 MiB cap -> RESOURCE_EXHAUSTED" "$OUTP" "RESOURCE_EXHAUSTED"
still_serving
OUTP=$("$RPC_PROBE" "$SATURN_ADDR" "$SATURN_TOKEN_FILE" oversize 65600)
contains "a 64 KiB+ spec under the cap -> refused by the spec bound" "$OUTP" "RESOURCE_EXHAUSTED"
still_serving
OUTP=$("$RPC_PROBE" "$SATURN_ADDR" "$SATURN_TOKEN_FILE" garbage /saturn.v1.Client/GetJob)
contains "bytes that are not a message -> INVALID_ARGUMENT" "$OUTP" "INVALID_ARGUMENT"
contains "  ... naming the expected type" "$OUTP" "saturn.v1.GetJobRequest"
still_serving
OUTP=$("$RPC_PROBE" "$SATURN_ADDR" "$SATURN_TOKEN_FILE" garbage /saturn.v1.Client/Nope)
contains "an unregistered method -> UNIMPLEMENTED" "$OUTP" "UNIMPLEMENTED"
still_serving
OUTP=$("$RPC_PROBE" "$SATURN_ADDR" "$SATURN_TOKEN_FILE" empty /saturn.v1.Client/ExportModel)
contains "Client/ExportModel for no job -> NOT_FOUND" "$OUTP" "NOT_FOUND: job \"\" not found"
# Worker methods need a worker's session secret (from RegisterWorker)
# before anything else is looked at, even with the client token.
for m in ParameterServer/GetLayout ParameterServer/Pull ParameterServer/Push Worker/FetchData \
    Worker/ReportMetrics Worker/Heartbeat Worker/AckAssignment Worker/Leave; do
    OUTP=$("$RPC_PROBE" "$SATURN_ADDR" "$SATURN_TOKEN_FILE" empty /saturn.v1.$m)
    contains "$m without a worker session -> PERMISSION_DENIED" "$OUTP" \
        "PERMISSION_DENIED: missing worker session"
done
still_serving
OUTP=$("$RPC_PROBE" "$SATURN_ADDR" - health)
contains "health check without a token -> SERVING" "$OUTP" "OK: SERVING"
OUTP=$("$RPC_PROBE" "$SATURN_ADDR" - health saturn.v1.Client)
contains "health check of saturn.v1.Client -> SERVING" "$OUTP" "OK: SERVING"
OUTP=$("$RPC_PROBE" "$SATURN_ADDR" - health no.such.Service)
contains "health check of an unknown service -> NOT_FOUND" "$OUTP" "NOT_FOUND"
still_serving

# A state conflict: cancelling a failed job -> FAILED_PRECONDITION, exit 8.
# (A lost worker no longer fails a job: its rank waits for another one. A
# job fails when it cannot start: 8 images cannot fill a batch of 64.)
start_worker solo
check "the job runs on the worker" wait_until 15 jq_ok '.state == "running"' \
    "$SATURN" status job-1 --json
expect_exit 0 "cancel job-1" "$SATURN" cancel job-1
FJ=$("$SATURN" submit --model mlp --dataset synthetic --workers 1 --train_limit 8 \
    --batch_size 64 --json | jq -r .job_id)
check "a job that cannot start training fails ($FJ)" wait_until 15 \
    jq_ok '.state == "failed" and (.reason | contains("fewer than a local batch"))' \
    "$SATURN" status "$FJ" --json
expect_exit 8 "cancelling a failed job -> FAILED_PRECONDITION, exit 8" "$SATURN" cancel "$FJ"
contains "  ... the CLI says so" "$ERR" "FAILED_PRECONDITION: job $FJ already failed"
still_serving

# Command-line mistakes and an unreachable coordinator.
expect_exit 1 "unknown option -> exit 1" "$SATURN" list --bogus
expect_exit 1 "an option of another command -> exit 1" "$SATURN" list --wbits 4
expect_exit 1 "a missing argument -> exit 1" "$SATURN" status
expect_exit 1 "run without a spec -> exit 1" "$SATURN" run
expect_exit 4 "run of a missing spec file -> exit 4" "$SATURN" run "$T/no-such-spec.json"
expect_exit 4 "a batch not divisible by the workers -> exit 4 (refused by the CLI)" \
    "$SATURN" submit --model mlp --dataset synthetic --workers 3 --batch_size 128
contains "  ... naming the field" "$ERR" '"batch_size"'
expect_exit 1 "export without -o -> exit 1" "$SATURN" export job-1
expect_exit 0 "--help shows real examples" "$SATURN" --help
contains "  ... e.g. submit with flags" "$OUT" "saturn submit --model preresnet20"
expect_exit 0 "submit --help lists spec fields" "$SATURN" submit --help
contains "  ... e.g. --wbits" "$OUT" "--wbits BITS"
expect_exit 0 "submit --dry-run validates on saturnd" "$SATURN" submit --model mlp \
    --dataset synthetic --wbits 4 --dry-run --json
check "  ... returns the canonical spec with the flag applied" \
    test "$(echo "$OUT" | jq -r '.job_id + ":" + (.spec.wbits | tostring)')" = ":4"
FIELDS=$(echo "$OUT" | jq -r '.spec | keys[]')
check "  ... and stores nothing" jq_ok 'length == 2' "$SATURN" list --json
HELP=$("$SATURN" submit --help)
MISSING=$(for f in $FIELDS; do case "$HELP" in *"--$f "*) ;; *) echo "$f" ;; esac; done)
check "every job spec field has a --FIELD flag in the CLI's table (missing: ${MISSING:-none})" \
    test -z "$MISSING"
expect_exit 5 "an unreachable coordinator -> exit 5" "$SATURN" list --addr 127.0.0.1:1 \
    --timeout 3000
check "saturnd is still alive at the end" kill -0 "$SATURND_PID"
finish
