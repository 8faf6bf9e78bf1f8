#!/usr/bin/env python3
"""Independent safetensors reader/writer for tests/test_safetensors.c (json + struct + numpy only).
  st_check.py read FILE   validates FILE as the format's reference implementation would (header padded
                          to 8 bytes, data_offsets contiguous from 0, shape x itemsize == byte span) and
                          prints 'meta KEY VALUE' and 'tensor NAME DTYPE d0,d1,.. NBYTES CRC32 SUM' lines,
                          sorted; SUM is the float64 sum of the values as numpy decodes them.
  st_check.py write DIR   writes DIR/single.safetensors and a sharded model in DIR/sharded/ (see below).
"""
import json, struct, sys, zlib
import numpy as np

ITEM = {"F32": 4, "F16": 2, "BF16": 2}


def decode(dtype, raw):
    if dtype == "F32":
        return np.frombuffer(raw, dtype="<f4").astype(np.float64)
    if dtype == "F16":
        return np.frombuffer(raw, dtype="<f2").astype(np.float64)
    u = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
    return u.view(np.float32).astype(np.float64)


def read(path):
    b = open(path, "rb").read()
    (n,) = struct.unpack("<Q", b[:8])
    assert n % 8 == 0, "header not padded to 8 bytes"
    text = b[8:8 + n].decode("utf-8")
    hdr = json.loads(text)
    data = b[8 + n:]
    lines, spans = [], []
    for k, v in (hdr.pop("__metadata__", None) or {}).items():
        lines.append("meta %s %s" % (k, v))
    for name, e in hdr.items():
        s, t = e["data_offsets"]
        nel = int(np.prod(e["shape"], dtype=np.int64)) if e["shape"] else 1
        assert (t - s) == nel * ITEM[e["dtype"]], name
        spans.append((s, t))
        raw = data[s:t]
        lines.append("tensor %s %s %s %d %08x %.6e" % (name, e["dtype"], ",".join(map(str, e["shape"])), t - s,
                                                       zlib.crc32(raw), decode(e["dtype"], raw).sum()))
    pos = 0
    for s, t in sorted(spans):
        assert s == pos, "data_offsets not contiguous"
        pos = t
    assert pos == len(data), "trailing bytes after the last tensor"
    print("\n".join(sorted(lines)))


def write_st(path, tensors, meta=None, order=None, pad=True):
    """tensors: name -> (dtype string, shape, raw bytes); data laid out in `order` (default: sorted)."""
    hdr, blobs, off = {}, [], 0
    if meta:
        hdr["__metadata__"] = meta
    for name in order or sorted(tensors):
        dt, shape, raw = tensors[name]
        hdr[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(hdr).encode()
    if pad:
        h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def bf16(x):
    u = np.asarray(x, dtype=np.float32).view(np.uint32)   # values chosen exactly representable in bf16
    return (u >> 16).astype("<u2").tobytes()


def write(d):
    import os
    a = (np.arange(6, dtype="<f4") * 0.5 - 1).reshape(2, 3)
    t = {
        "a": ("F32", a.shape, a.tobytes()),
        "b": ("F16", (4,), np.array([1, -2, 0.5, 65504], dtype="<f2").tobytes()),
        "c": ("BF16", (2, 2), bf16([1, 2, -3, 0.15625])),
        "s": ("F32", (), np.array(7, dtype="<f4").tobytes()),
        "z": ("F32", (0, 3), b""),
    }
    write_st(os.path.join(d, "single.safetensors"), t, {"format": "pt", "note": "h\u00e9llo"},
             order=["c", "z", "a", "s", "b"], pad=False)
    sd = os.path.join(d, "sharded")
    os.makedirs(sd, exist_ok=True)
    x = np.arange(12, dtype="<f4").reshape(3, 4)
    write_st(os.path.join(sd, "model-00001-of-00002.safetensors"),
             {"x": ("F32", (3, 4), x.tobytes()), "y": ("F16", (2,), np.array([3, 4], dtype="<f2").tobytes())})
    write_st(os.path.join(sd, "model-00002-of-00002.safetensors"), {"w": ("BF16", (1, 2), bf16([-1, 0.5]))},
             {"format": "pt"})
    idx = {"metadata": {"total_size": 48 + 4 + 4},
           "weight_map": {"x": "model-00001-of-00002.safetensors", "w": "model-00002-of-00002.safetensors",
                          "y": "model-00001-of-00002.safetensors"}}
    json.dump(idx, open(os.path.join(sd, "model.safetensors.index.json"), "w"))


if __name__ == "__main__":
    {"read": read, "write": write}[sys.argv[1]](sys.argv[2])
