#!/usr/bin/python3
"""PyTorch reference for the f32 transformer ops in src/tensor (tests/test_ops.c drives it).

Usage: ops_ref.py run IN OUT
  IN holds named tensors "<case>/<name>"; every case has an "op" string. For each case this computes
  the forward outputs and, through autograd of sum(y * dy), every input/weight gradient, and writes
  them to OUT as "<case>/<name>". All math runs in float64 so the reference is exact next to the f32
  C code; results are written as float32 (scalars such as the loss sum as float64).

File format (little-endian): magic b"SLOPS1\\n\\0", then records until EOF:
  u32 name_len, name bytes (utf-8), u32 kind (0 f32, 1 i32, 2 f64, 3 utf-8 string),
  u32 ndim, i64 dims[ndim], then the data (for a string, dims = [byte length]).
Exit status 3 means torch is missing (the C test then skips).
"""
import math
import struct
import sys

MAGIC = b"SLOPS1\n\0"
KINDS = {0: ("<f4", 4), 1: ("<i4", 4), 2: ("<f8", 8)}


def read_records(path):
    import numpy as np
    out = {}
    with open(path, "rb") as f:
        buf = f.read()
    if buf[:8] != MAGIC:
        raise SystemExit(f"{path}: bad magic")
    off = 8
    while off < len(buf):
        (nlen,) = struct.unpack_from("<I", buf, off); off += 4
        name = buf[off:off + nlen].decode(); off += nlen
        kind, ndim = struct.unpack_from("<II", buf, off); off += 8
        dims = list(struct.unpack_from(f"<{ndim}q", buf, off)); off += 8 * ndim
        if kind == 3:
            out[name] = buf[off:off + dims[0]].decode(); off += dims[0]
            continue
        dt, size = KINDS[kind]
        n = 1
        for d in dims:
            n *= d
        out[name] = np.frombuffer(buf, dtype=dt, count=n, offset=off).reshape(dims).copy()
        off += n * size
    return out


def write_records(path, recs):
    import numpy as np
    with open(path, "wb") as f:
        f.write(MAGIC)
        for name, arr in recs.items():
            arr = np.ascontiguousarray(arr)
            kind = {np.dtype("float32"): 0, np.dtype("int32"): 1, np.dtype("float64"): 2}[arr.dtype]
            nb = name.encode()
            f.write(struct.pack("<I", len(nb)) + nb + struct.pack("<II", kind, arr.ndim))
            f.write(struct.pack(f"<{arr.ndim}q", *arr.shape))
            f.write(arr.astype(arr.dtype.newbyteorder("<")).tobytes())


# ---- reference ops (inputs: dict of numpy arrays / scalars, outputs: dict of tensors) ----

def t64(a, grad=False):
    import torch
    x = torch.tensor(a, dtype=torch.float64)
    return x.requires_grad_(grad)


def scal(c, name):
    return float(c[name].reshape(-1)[0])


def iscal(c, name):
    return int(c[name].reshape(-1)[0])


def backprop(y, dy, leaves):
    """Gradients of sum(y * dy) w.r.t. leaves (name -> tensor)."""
    import torch
    (y * t64(dy)).sum().backward()
    return {"d" + k: v.grad for k, v in leaves.items()}


def ref_rmsnorm(c):
    import torch
    x, w = t64(c["x"], True), t64(c["w"], True)
    off, eps = scal(c, "w_offset"), scal(c, "eps")
    rstd = torch.rsqrt((x * x).mean(-1, keepdim=True) + eps)
    y = x * rstd * (w + off)
    out = {"y": y, "rstd": rstd.squeeze(-1)}
    out.update(backprop(y, c["dy"], {"x": x, "w": w}))
    return out


def ref_layernorm(c):
    import torch
    import torch.nn.functional as F
    x, w, b = t64(c["x"], True), t64(c["w"], True), t64(c["b"], True)
    eps = scal(c, "eps")
    y = F.layer_norm(x, (x.shape[-1],), w, b, eps)
    mean = x.mean(-1)
    rstd = torch.rsqrt(x.var(-1, unbiased=False) + eps)
    out = {"y": y, "mean": mean, "rstd": rstd}
    out.update(backprop(y, c["dy"], {"x": x, "w": w, "b": b}))
    return out


def hf_inv_freq(c, n_rot):
    """HF default inv_freq, then transformers' `_compute_llama3_parameters` when l3_factor > 0."""
    import torch
    base = scal(c, "base")
    inv_freq = 1.0 / (base ** (torch.arange(0, n_rot, 2, dtype=torch.float64) / n_rot))
    factor = scal(c, "l3_factor")
    if factor > 0:
        low_ff, high_ff = scal(c, "l3_low_freq_factor"), scal(c, "l3_high_freq_factor")
        old_ctx = float(iscal(c, "l3_orig_ctx"))
        low_freq_wavelen = old_ctx / low_ff
        high_freq_wavelen = old_ctx / high_ff
        wavelen = 2 * math.pi / inv_freq
        inv_freq_llama = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
        smooth = (old_ctx / wavelen - low_ff) / (high_ff - low_ff)
        smoothed = (1 - smooth) * inv_freq_llama / factor + smooth * inv_freq_llama
        is_medium = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
        inv_freq = torch.where(is_medium, smoothed, inv_freq_llama)
    return inv_freq


def ref_rope(c):
    import torch
    x = t64(c["x"], True)                      # (T, H, D)
    T, H, D = x.shape
    n_rot = iscal(c, "n_rot")
    inv_freq = hf_inv_freq(c, n_rot)
    if "freq_factors" in c:      # llama.cpp rope_freqs.weight: divides each frequency
        inv_freq = inv_freq / t64(c["freq_factors"])
    pos = torch.tensor(c["pos"].astype("int64"), dtype=torch.float64)
    freqs = (pos * scal(c, "freq_scale"))[:, None] * inv_freq[None, :]   # (T, n_rot/2)
    xr, xp = x[..., :n_rot], x[..., n_rot:]
    if iscal(c, "style") == 2:   # NEOX: HF rotate_half over the rotary dims
        emb = torch.cat((freqs, freqs), dim=-1)[:, None, :]
        cos, sin = emb.cos(), emb.sin()
        x1, x2 = xr[..., : n_rot // 2], xr[..., n_rot // 2:]
        rot = torch.cat((-x2, x1), dim=-1)
        yr = xr * cos + rot * sin
    else:                        # NORM: adjacent pairs (2i, 2i+1)
        cos, sin = freqs.cos()[:, None, :], freqs.sin()[:, None, :]
        pairs = xr.reshape(T, H, n_rot // 2, 2)
        a, b = pairs[..., 0], pairs[..., 1]
        yr = torch.stack((a * cos - b * sin, a * sin + b * cos), dim=-1).reshape(T, H, n_rot)
    y = torch.cat((yr, xp), dim=-1)
    out = {"y": y, "inv_freq": inv_freq}
    out.update(backprop(y, c["dy"], {"x": x}))
    return out


def ref_attention(c):
    import torch
    q, k, v = t64(c["q"], True), t64(c["k"], True), t64(c["v"], True)   # (T,Hq,D), (S,Hkv,D)
    T, Hq, D = q.shape
    S, Hkv, _ = k.shape
    q_pos0, window = iscal(c, "q_pos0"), iscal(c, "window")
    scale, cap = scal(c, "scale"), scal(c, "softcap")
    # HF repeat_kv: q head h reads kv head h // (Hq / Hkv)
    kr = k.repeat_interleave(Hq // Hkv, dim=1)
    vr = v.repeat_interleave(Hq // Hkv, dim=1)
    scores = torch.einsum("thd,shd->hts", q, kr) * scale
    if cap > 0:
        scores = cap * torch.tanh(scores / cap)
    qp = torch.arange(T)[:, None] + q_pos0
    ks = torch.arange(S)[None, :]
    visible = ks <= qp
    if window > 0:
        visible = visible & (qp - ks < window)
    if "doc_start" in c:
        visible = visible & (ks >= torch.tensor(c["doc_start"].astype("int64"))[:, None])
    scores = scores.masked_fill(~visible[None], float("-inf"))
    att = torch.softmax(scores, dim=-1)
    y = torch.einsum("hts,shd->thd", att, vr)
    out = {"out": y, "att": att}
    out.update(backprop(y, c["dout"], {"q": q, "k": k, "v": v}))
    return out


def ref_gelu(c):
    import torch.nn.functional as F
    x = t64(c["x"], True)
    y = F.gelu(x, approximate="tanh")
    out = {"y": y}
    out.update(backprop(y, c["dy"], {"x": x}))
    return out


def ref_glu(c, act):
    import torch.nn.functional as F
    gate, up = t64(c["gate"], True), t64(c["up"], True)
    a = F.silu(gate) if act == "silu" else F.gelu(gate, approximate="tanh")
    y = a * up
    out = {"y": y}
    out.update(backprop(y, c["dy"], {"gate": gate, "up": up}))
    return out


def ref_softmax(c):
    import torch
    return {"y": torch.softmax(t64(c["x"]), dim=-1)}


def ref_cross_entropy(c):
    import torch
    import torch.nn.functional as F
    logits = t64(c["logits"], True)
    tg = torch.tensor(c["targets"].astype("int64"))
    tg = torch.where(tg < 0, torch.full_like(tg, -100), tg)
    loss = F.cross_entropy(logits, tg, ignore_index=-100, reduction="sum")
    (loss * scal(c, "grad_scale")).backward()
    n = int((tg >= 0).sum())
    return {"loss": torch.tensor([loss.item()], dtype=torch.float64),
            "n_counted": torch.tensor([n], dtype=torch.int32), "dlogits": logits.grad}


def ref_embedding(c):
    import torch
    import torch.nn.functional as F
    table = t64(c["table"], True)
    ids = torch.tensor(c["ids"].astype("int64"))
    y = F.embedding(ids, table) * scal(c, "scale")
    out = {"y": y}
    out.update(backprop(y, c["dy"], {"table": table}))
    return out


OPS = {
    "rmsnorm": ref_rmsnorm, "layernorm": ref_layernorm, "rope": ref_rope, "attention": ref_attention,
    "gelu": ref_gelu, "swiglu": lambda c: ref_glu(c, "silu"), "geglu": lambda c: ref_glu(c, "gelu"),
    "softmax": ref_softmax, "cross_entropy": ref_cross_entropy, "embedding": ref_embedding,
}


def main(argv):
    if len(argv) != 4 or argv[1] != "run":
        print(__doc__, file=sys.stderr)
        return 2
    try:
        import numpy  # noqa: F401
        import torch
    except ImportError as e:
        print(f"ops_ref.py: {e}", file=sys.stderr)
        return 3
    torch.set_grad_enabled(True)
    recs = read_records(argv[2])
    cases = {}
    for name, val in recs.items():
        case, _, field = name.partition("/")
        cases.setdefault(case, {})[field] = val
    out = {}
    for case, c in cases.items():
        op = c.get("op")
        if op not in OPS:
            print(f"ops_ref.py: case '{case}': unknown op '{op}'", file=sys.stderr)
            return 1
        for field, val in OPS[op](c).items():
            arr = val.detach().numpy()
            if arr.dtype.kind == "f" and field not in ("loss",):
                arr = arr.astype("float32")
            out[f"{case}/{field}"] = arr
    write_records(argv[3], out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
