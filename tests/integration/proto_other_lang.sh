#!/usr/bin/env bash
# proto_other_lang.sh - the API is not tied to C: protoc compiles
# proto/saturn.proto and proto/health.proto for other languages (C++ and
# Python messages; gRPC C++/Python service stubs when Debian's
# protobuf-compiler-grpc plugins are installed), and the C++ output compiles.
. "$(dirname "$0")/lib.sh"
if ! command -v protoc >/dev/null; then
    echo "SKIP: needs protoc (protobuf-compiler)"
    exit 77
fi
P=$PROTO_DIR
mkdir -p "$T/cpp" "$T/py"
check "protoc --cpp_out" protoc -I "$P" --cpp_out="$T/cpp" "$P/saturn.proto" "$P/health.proto"
check "protoc --python_out" protoc -I "$P" --python_out="$T/py" "$P/saturn.proto" \
    "$P/health.proto"
check "C++ messages exist" test -s "$T/cpp/saturn.pb.cc" -a -s "$T/cpp/saturn.pb.h"
if command -v g++ >/dev/null && pkg-config --exists protobuf; then
    check "the generated C++ compiles" \
        g++ -std=c++17 -c "$T/cpp/saturn.pb.cc" -I "$T/cpp" $(pkg-config --cflags protobuf) \
        -o "$T/cpp/saturn.pb.o"
fi
for lang in cpp python; do
    plugin=/usr/bin/grpc_${lang}_plugin
    if [ -x "$plugin" ]; then
        mkdir -p "$T/grpc-$lang"
        check "protoc with grpc_${lang}_plugin generates service stubs" \
            protoc -I "$P" --plugin=protoc-gen-grpc="$plugin" --grpc_out="$T/grpc-$lang" \
            "$P/saturn.proto" "$P/health.proto"
    fi
done
if [ -x /usr/bin/python3 ]; then
    check "the Python messages import and round-trip" /usr/bin/python3 -c "
import sys; sys.path.insert(0, '$T/py')
import saturn_pb2
m = saturn_pb2.PushRequest(job_id='job-1', shard=3, gradient=b'\x00\x00\x80?')
assert saturn_pb2.PushRequest.FromString(m.SerializeToString()).shard == 3"
fi
finish
