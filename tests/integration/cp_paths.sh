#!/usr/bin/env bash
# cp_paths.sh - a job spec cannot make saturnd read a host file: data_dir
# must lie under a --data-root (else INVALID_ARGUMENT at submit, naming no
# root), init_from is a job id or a plain file name in --import-dir
# (opened without following links), and the reasons of jobs whose
# init_from file is not a checkpoint reveal neither its bytes nor its
# size. saturnd keeps serving after each refusal.
. "$(dirname "$0")/lib.sh"

mkdir -p "$T/data/sets/inroot" "$T/imports" "$T/outside"
ln -s /etc "$T/data/escape"
# A file outside the roots that starts like /etc/shadow does.
printf 'root:*:20000:0:99999:7:::\nsecret-line\n' >"$T/outside/shadow"
ln -s "$T/outside/shadow" "$T/imports/link.safetensors"
printf 'root:*:20000:0:99999:7:::\nsecret-line\n' >"$T/imports/garbage.safetensors"
mkfifo "$T/imports/fifo.safetensors"

start_saturnd "$T/state" --data-root "$T/data" --import-dir "$T/imports" --lease-ms 2000

serving() { kill -0 "$SATURND_PID" && "$SATURN" list --json >/dev/null; }
sub() { "$SATURN" submit --model mlp --dataset synthetic --workers 1 --epochs 1 "$@"; }

for d in /etc "$T/outside" "$T/data/../outside" ../../etc "sets/../../outside" \
    "$T/data/escape" escape/ssl; do
    expect_exit 4 "data_dir \"$d\" is refused" sub --data_dir "$d"
    contains "  ... as outside the allowed data roots" "$ERR" "outside the allowed data roots"
    case "$ERR" in
    *"$T/data"*) fail "  ... and the error does not name the root: $ERR" ;;
    *) pass "  ... and the error does not name the root" ;;
    esac
done
check "saturnd still serves" serving
expect_exit 0 "data_dir naming a directory under the root is accepted" sub --data_dir sets/inroot \
    --dry-run
expect_exit 0 "data_dir as an absolute path inside the root is accepted" sub \
    --data_dir "$T/data/sets/inroot" --dry-run

for f in /etc/shadow "$T/imports/garbage.safetensors" ../imports/garbage.safetensors . ..; do
    expect_exit 4 "init_from \"$f\" is refused" sub --init_from "$f"
    contains "  ... naming the field" "$ERR" 'field "init_from"'
done
check "saturnd still serves" serving

# Jobs that start: one worker, each job fails at set-up; none may tell what
# the named file holds.
start_worker w0
wait_until 20 jq_ok 'length >= 1' "$SATURN" workers --json
job_done() {
    "$SATURN" status "$1" --json 2>/dev/null |
        jq -e '.state == "failed" or .state == "succeeded"' >/dev/null
}
for name in link garbage fifo missing; do
    J=$(sub --init_from "$name.safetensors" --json | jq -r .job_id)
    check "init_from $name.safetensors: job $J ends" wait_until 60 job_done "$J"
    R=$("$SATURN" status "$J" --json | jq -r '.state + ": " + .reason')
    note "$R"
    contains "  ... failed, naming init_from" "$R" 'failed: cannot start training: init_from'
    case "$R" in
    *root* | *secret* | *3619251681095544690* | *header* | *bytes* | *"$T"*)
        fail "  ... without the file's content, size or host path: $R" ;;
    *) pass "  ... without the file's content, size or host path" ;;
    esac
done
contains "the missing file is said to be missing" \
    "$("$SATURN" status "$J" --json | jq -r .reason)" "no such file in the import directory"
grep -q 'init_from garbage.safetensors' "$T/saturnd.log"
check "saturnd's log keeps the reader's detail" test $? -eq 0
check "saturnd still serves" serving
finish
