#!/usr/bin/env bash
# cp_strings.sh - strings that are not UTF-8 or hold control characters:
# saturnd refuses them (INVALID_ARGUMENT naming the field) and keeps
# serving, cuts a long multi-byte reason on a character boundary, forges no
# log line, and a strict proto3 client (Python grpcio) decodes every
# GetJob, ListJobs and ListWorkers reply, also after a restart over rows
# that an older version stored with invalid UTF-8 and ESC sequences, which
# `saturn list` and `saturn status` then print escaped.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
if ! "$PY" -c 'import grpc, google.protobuf, sqlite3' 2>/dev/null || ! command -v protoc >/dev/null
then
    echo "SKIP: needs Debian's python3-grpcio, python3-protobuf and protobuf-compiler"
    exit 77
fi
mkdir -p "$T/py"
check "protoc generates Python messages from proto/" \
    protoc -I "$PROTO_DIR" --python_out="$T/py" "$PROTO_DIR/saturn.proto" "$PROTO_DIR/health.proto"
PYS=$(dirname "$0")/py_strings.py

start_saturnd "$T/state"
for i in 1 2 3; do
    expect_exit 0 "submit job-$i (queued: no workers)" "$SATURN" submit --model mlp \
        --dataset synthetic --workers 1 --name "job$i"
done
expect_exit 0 "the string attacks are refused" "$PY" "$PYS" "$T/py" "$SATURN_ADDR" \
    "$SATURN_TOKEN_FILE" attack
echo "$OUT" | sed 's/^/#   /'
check "saturnd keeps serving" jq_ok 'length == 3' "$SATURN" list --json
expect_exit 0 "a strict client decodes every reply" "$PY" "$PYS" "$T/py" "$SATURN_ADDR" \
    "$SATURN_TOKEN_FILE" decode
echo "$OUT" | sed 's/^/#   /'
if grep -q '^2030-01-01T00:00:00.000Z' "$T/saturnd.log" || grep -q 'FORGED' "$T/saturnd.log"; then
    fail "the log has no forged line"
else
    pass "the log has no forged line"
fi

# An older version stored invalid UTF-8 and terminal escapes: plant them.
kill -TERM "$SATURND_PID"
check "saturnd stops" wait_until 15 bash -c "! kill -0 $SATURND_PID 2>/dev/null"
"$PY" - "$T/state/saturnd.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
bad = b"old \xff\xc3 row \x1b[2J\x1b]0;owned\x07 end"
db.execute("UPDATE jobs SET reason = CAST(? AS TEXT) WHERE id = 'job-1'", (bad,))
db.execute("UPDATE job_history SET reason = CAST(? AS TEXT) WHERE job_id = 'job-1'", (bad,))
db.execute("UPDATE events SET message = CAST(? AS TEXT) WHERE job_id = 'job-1'", (bad,))
db.commit()
PY
check "rows with invalid UTF-8 planted in the store" test $? -eq 0
start_saturnd "$T/state"
expect_exit 0 "after the restart, a strict client decodes every reply" "$PY" "$PYS" "$T/py" \
    "$SATURN_ADDR" "$SATURN_TOKEN_FILE" decode
echo "$OUT" | sed 's/^/#   /'
"$SATURN" list >"$T/list.txt" 2>&1
"$SATURN" status job-1 >>"$T/list.txt" 2>&1
"$SATURN" status job-2 >>"$T/list.txt" 2>&1
if LC_ALL=C grep -q $'\x1b\|\x07' "$T/list.txt"; then
    fail "saturn list and status print no raw ESC or BEL byte"
else
    pass "saturn list and status print no raw ESC or BEL byte"
fi
contains "  ... but the escaped text" "$(cat "$T/list.txt")" '\x1b[2J'
check "a strict reader finds the CLI's output valid UTF-8" "$PY" -c \
    "open('$T/list.txt', 'rb').read().decode('utf-8')"
finish
