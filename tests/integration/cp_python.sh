#!/usr/bin/env bash
# cp_python.sh - a second implementation drives saturnd: Python grpcio from
# Debian (/usr/bin/python3, python3-grpcio + python3-protobuf) with message
# classes that protoc generates from the same .proto files at test time.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
if ! "$PY" -c 'import grpc, google.protobuf' 2>/dev/null || ! command -v protoc >/dev/null; then
    echo "SKIP: needs Debian's python3-grpcio, python3-protobuf and protobuf-compiler"
    exit 77
fi
mkdir -p "$T/py"
check "protoc generates Python messages from proto/" \
    protoc -I "$PROTO_DIR" --python_out="$T/py" "$PROTO_DIR/saturn.proto" "$PROTO_DIR/health.proto"

start_saturnd "$T/state"
start_worker pyw
check "the worker registers" wait_until 15 jq_ok 'length == 1' "$SATURN" workers --json
expect_exit 0 "submit a job with the C CLI" "$SATURN" submit --model mlp --dataset synthetic
check "it runs" wait_until 10 jq_ok '.state == "running"' "$SATURN" status job-1 --json

expect_exit 0 "the Python client's checks pass" \
    "$PY" "$(dirname "$0")/py_client.py" "$T/py" "$SATURN_ADDR" "$SATURN_TOKEN_FILE" job-1
echo "$OUT" | sed 's/^/#   /'
PYJOB=$(echo "$OUT" | awk '/^submitted/{print $2}')
check "the C CLI sees the job Python submitted" \
    jq_ok '.name == "from-python" and .model == "cnn-small"' "$SATURN" status "$PYJOB" --json
finish
