#!/usr/bin/env python3
"""make_seeds.py - writes the seed corpora of tests/fuzz (corpus/<target>/).

Small, hand-made, valid inputs in each target's input layout (see the
comment at the top of each fuzz_<target>.c); the job specs are copied from
examples/. Run from anywhere; rewrites the files it owns and leaves any
other file in corpus/ alone. The outputs are committed, so this only needs
running again when a layout changes.
"""
import gzip
import json
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def put(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def u16(n):
    return struct.pack("<H", n)


# ---- spec: JSON text
for e in sorted(os.listdir(os.path.join(ROOT, "examples"))):
    if e.endswith(".json"):
        shutil.copy(os.path.join(ROOT, "examples", e), os.path.join(HERE, "corpus", "spec", e))
put("spec", "minimal.json", '{"model": "mlp", "dataset": "synthetic"}')
put("spec", "ssp.json", json.dumps({"model": "cnn-small", "dataset": "mnist", "wbits": 2,
                                    "abits": 3, "consistency": "ssp:3", "workers": 4,
                                    "seed": 9007199254740992, "name": "caf\u00e9 \"q\"",
                                    "priority": -5, "sat": "all", "sat_fan": "out"}))
put("spec", "unknown-field.json", '{"model": "mlp", "dataset": "synthetic", "lrate": 0.1}')
put("spec", "set-flags", "=model=cnn-small\ndataset=mnist\nwbits=4\nconsistency=ssp:2\n"
    "augment=false\nlr=0.05\nseed=7\nwbits=99\n")

# ---- idx: max_images byte, u16 label-file length, label file, image file
labels = struct.pack(">II", 0x801, 2) + bytes([1, 7])
images = struct.pack(">IIII", 0x803, 2, 3, 3) + bytes(range(18))
put("idx", "plain", b"\0" + u16(len(labels)) + labels + images)
put("idx", "keep-one", b"\1" + u16(len(labels)) + labels + images)
gl, gi = gzip.compress(labels, mtime=0), gzip.compress(images, mtime=0)
put("idx", "gzip", b"\0" + u16(len(gl)) + gl + gi)

# ---- cifar: file-count byte, then u16 length + bytes per file but the last
rec = lambda label, fill: bytes([label]) + bytes([fill]) * 3072
put("cifar", "one-record", b"\0" + rec(3, 0x80))
put("cifar", "two-files", b"\1" + u16(3073) + rec(0, 1) + rec(9, 2) + rec(5, 3))


# ---- safetensors: a whole file
def safetensors(tensors, meta):
    header, blob = {}, b""
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(blob), len(blob) + len(data)]}
        blob += data
    if meta:
        header["__metadata__"] = meta
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + blob


put("safetensors", "two", safetensors(
    [("w", "F32", [2, 2], struct.pack("<4f", 1, -2, 0.5, 3)),
     ("b", "I8", [3], bytes([1, 255, 3]))], {"format": "pt", "saturn.step": "12"}))
put("safetensors", "scalar-i64", safetensors([("step", "I64", [], struct.pack("<q", 7))], None))
put("safetensors", "empty", safetensors([], {"k": "v"}))


# ---- rpc: request-type byte (row of fuzz_rpc.c's table), then wire bytes
def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(num, value):
    if isinstance(value, (bytes, str)):
        value = value.encode() if isinstance(value, str) else value
        return varint(num << 3 | 2) + varint(len(value)) + value
    if isinstance(value, float):
        return varint(num << 3 | 1) + struct.pack("<d", value)
    return varint(num << 3) + varint(value)


spec = open(os.path.join(ROOT, "examples", "cnn-small-w4a4.json")).read()
put("rpc", "00-submit", b"\x00" + field(1, spec) + field(2, 1))
put("rpc", "01-get-job", b"\x01" + field(1, "job-1"))
put("rpc", "02-list-jobs", b"\x02" + field(1, 10) + field(2, b"\x01\x02"))
put("rpc", "08-heartbeat", b"\x08" + field(1, "w-1") + field(2, 2) + field(3, "job-1")
    + field(4, 1))
put("rpc", "12-report-metrics", b"\x0c" + field(1, "w-1") + field(2, "job-1") + field(5, 40)
    + b"\x3d" + struct.pack("<f", 0.75) + field(12, 0.125) + field(13, 1))
put("rpc", "14-pull", b"\x0e" + field(1, "job-1") + field(2, 1) + field(3, 5) + field(5, 1))
put("rpc", "15-push", b"\x0f" + field(1, "job-1") + field(4, 5)
    + field(5, struct.pack("<4f", 0.1, 0.2, -0.3, 4)) + field(6, 128))
put("rpc", "15-push-fields-twice", b"\x0f" + field(5, b"\x01\x02\x03\x04") + field(1, "job-1")
    + field(7, struct.pack("<2f", 1, 2)) + field(5, struct.pack("<2f", 0.5, -1)) + field(6, 64))
put("rpc", "16-health", b"\x10" + field(1, "saturn.v1.Client"))

# ---- route: method, space, path
for i, req in enumerate(["GET /", "GET /healthz", "HEAD /metrics", "GET /jobs/job-1",
                         "GET /jobs/job-1/", "GET /jobs/job-12/loss.svg",
                         "HEAD /jobs/job-3/accuracy.svg", "POST /jobs/job-1", "GET /jobs/",
                         "GET /sweeps/sw-20261125-194233-1a2b3c", "GET /sweeps/sw-1/"]):
    put("route", "%02d" % i, req)
