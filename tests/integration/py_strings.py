"""py_strings.py - string attacks on saturnd, and a strict proto3 client
(Python grpcio with protoc-generated messages) that must decode every reply.

usage: /usr/bin/python3 py_strings.py GENERATED_DIR ADDR TOKEN_FILE attack|decode

attack: sends CancelJob and RegisterWorker requests whose strings are not
UTF-8 or hold control characters (hand-encoded: Python's protobuf refuses
to build them) and checks INVALID_ARGUMENT naming the field; cancels job-2
with a reason of 200 two-byte characters. decode: GetJob of every job,
ListJobs and ListWorkers decode. Prints "ok <what>" per check; exits
non-zero on the first failure.
"""
import sys

sys.path.insert(0, sys.argv[1])
import grpc  # noqa: E402
import saturn_pb2  # noqa: E402

addr, token_file, mode = sys.argv[2], sys.argv[3], sys.argv[4]
token = open(token_file).read().strip()
auth = [("authorization", "Bearer " + token)]
channel = grpc.insecure_channel(addr)


def ok(what):
    print("ok", what, flush=True)


def fail(what):
    print("FAIL", what, flush=True)
    sys.exit(1)


def varint(v):
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def sfield(n, b):
    return varint(n << 3 | 2) + varint(len(b)) + b


def ufield(n, v):
    return varint(n << 3) + varint(v)


def raw(path, resp_cls):
    return channel.unary_unary(path, request_serializer=lambda b: b,
                               response_deserializer=resp_cls.FromString)


cancel_raw = raw("/saturn.v1.Client/CancelJob", saturn_pb2.CancelJobResponse)
register_raw = raw("/saturn.v1.Worker/RegisterWorker", saturn_pb2.RegisterResponse)


def refused(what, call, body, field):
    try:
        call(body, metadata=auth, timeout=10)
    except grpc.RpcError as e:
        if e.code() == grpc.StatusCode.INVALID_ARGUMENT and ('"%s"' % field) in e.details():
            return ok("%s -> INVALID_ARGUMENT naming %s (%s)" % (what, field, e.details()))
        fail("%s: %s %s" % (what, e.code(), e.details()))
    fail("%s: accepted" % what)


def attack():
    j1 = sfield(1, b"job-1")
    refused("CancelJob reason not UTF-8", cancel_raw, j1 + sfield(2, b"bad \xff\xfe"), "reason")
    refused("CancelJob reason cut inside a character", cancel_raw, j1 + sfield(2, b"caf\xc3"),
            "reason")
    refused("CancelJob reason with a newline (log forging)", cancel_raw,
            j1 + sfield(2, b"x\n2030-01-01T00:00:00.000Z info  saturnd: FORGED line"), "reason")
    refused("CancelJob reason with ESC", cancel_raw, j1 + sfield(2, b"\x1b[2Jcleared"), "reason")
    refused("CancelJob job_id not UTF-8", cancel_raw, sfield(1, b"job-\xff"), "job_id")
    reg = ufield(2, 1)
    refused("RegisterWorker name not UTF-8", register_raw,
            sfield(1, b"w\xff") + reg + sfield(3, b"1.0"), "name")
    refused("RegisterWorker version not UTF-8", register_raw,
            sfield(1, b"w1") + reg + sfield(3, b"1.\xc0\xaf"), "version")
    refused("RegisterWorker version with ESC", register_raw,
            sfield(1, b"w1") + reg + sfield(3, b"\x1b[31mred"), "version")
    refused("RegisterWorker version with a C1 control", register_raw,
            sfield(1, b"w1") + reg + sfield(3, "\u009b31m".encode()), "version")
    cancel = channel.unary_unary("/saturn.v1.Client/CancelJob",
                                 request_serializer=saturn_pb2.CancelJobRequest.SerializeToString,
                                 response_deserializer=saturn_pb2.CancelJobResponse.FromString)
    r = cancel(saturn_pb2.CancelJobRequest(job_id="job-2", reason="\u00e9" * 200), metadata=auth,
               timeout=10)
    reason = r.job.reason
    n = len(reason.encode())
    if not reason.startswith("cancelled: \u00e9") or n > 255 or set(reason[11:]) != {"\u00e9"}:
        fail("a reason of 200 two-byte characters: %r (%d bytes)" % (reason, n))
    ok("a reason of 200 two-byte characters is kept cut on a character: %d bytes" % n)
    try:
        cancel(saturn_pb2.CancelJobRequest(job_id="job-3", reason="\u00e9" * 201), metadata=auth,
               timeout=10)
        fail("a reason of 201 characters was accepted")
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.INVALID_ARGUMENT:
            fail("201 characters: %s" % e.code())
        ok("a reason of 201 characters -> INVALID_ARGUMENT")


def decode():
    get = channel.unary_unary("/saturn.v1.Client/GetJob",
                              request_serializer=saturn_pb2.GetJobRequest.SerializeToString,
                              response_deserializer=saturn_pb2.GetJobResponse.FromString)
    lst = channel.unary_unary("/saturn.v1.Client/ListJobs",
                              request_serializer=saturn_pb2.ListJobsRequest.SerializeToString,
                              response_deserializer=saturn_pb2.ListJobsResponse.FromString)
    wk = channel.unary_unary("/saturn.v1.Client/ListWorkers",
                             request_serializer=saturn_pb2.ListWorkersRequest.SerializeToString,
                             response_deserializer=saturn_pb2.ListWorkersResponse.FromString)
    try:
        jobs = lst(saturn_pb2.ListJobsRequest(), metadata=auth, timeout=10).jobs
        ok("ListJobs decodes (%d jobs)" % len(jobs))
        for j in jobs:
            g = get(saturn_pb2.GetJobRequest(job_id=j.id), metadata=auth, timeout=10).job
            ok("GetJob %s decodes (reason %r, %d history entries)" % (j.id, g.reason,
                                                                        len(g.history)))
        ws = wk(saturn_pb2.ListWorkersRequest(include_lost=True), metadata=auth, timeout=10)
        ok("ListWorkers decodes (%d workers)" % len(ws.workers))
    except grpc.RpcError as e:
        fail("a reply does not decode: %s %s" % (e.code(), e.details()))


attack() if mode == "attack" else decode()
