#!/usr/bin/env python3
"""Independent numpy reference for GGML block formats (written from the format description).

usage: quant_ref.py deq <dtype> <in.bin> <out.f32>   raw blocks -> float32 values
       quant_ref.py q   <dtype> <in.f32> <out.bin>   float32 -> blocks (legacy 32-blocks only)
All arithmetic is float32 in the same operation order as the format definition, so results are exact.
"""
import sys
import numpy as np

F32 = np.float32


def f16(a):
    return np.frombuffer(np.ascontiguousarray(a).tobytes(), dtype=np.float16).astype(F32)


def blocks(raw, size):
    assert len(raw) % size == 0, "truncated block data"
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, size)


def deq_legacy(raw, kind):
    size = {"q4_0": 18, "q4_1": 20, "q5_0": 22, "q5_1": 24, "q8_0": 34}[kind]
    b = blocks(raw, size)
    d = f16(b[:, 0:2])[:, None]
    off = 2
    m = None
    if kind in ("q4_1", "q5_1"):
        m = f16(b[:, 2:4])[:, None]
        off = 4
    if kind == "q8_0":
        q = b[:, 2:34].view(np.int8).astype(F32)
        return (d * q).ravel()
    hbits = None
    if kind in ("q5_0", "q5_1"):
        qh = b[:, off:off + 4].astype(np.uint32)
        word = qh[:, 0] | (qh[:, 1] << 8) | (qh[:, 2] << 16) | (qh[:, 3] << 24)
        hbits = ((word[:, None] >> np.arange(32, dtype=np.uint32)) & 1).astype(np.int32)
        off += 4
    qs = b[:, off:off + 16].astype(np.int32)
    lv = np.concatenate([qs & 0xF, qs >> 4], axis=1)           # element j and j+16
    if hbits is not None:
        lv = lv | (hbits << 4)
    if kind == "q4_0":
        return (d * (lv - 8).astype(F32)).ravel()
    if kind == "q5_0":
        return (d * (lv - 16).astype(F32)).ravel()
    return (d * lv.astype(F32) + m).ravel()


def scale_min_k4(s12):
    """6-bit scales and mins of the 8 sub-blocks from the 12 packed bytes (n, 12) -> (n, 8) each."""
    s = s12.astype(np.int32)
    sc = np.zeros((s.shape[0], 8), np.int32)
    mn = np.zeros((s.shape[0], 8), np.int32)
    for j in range(8):
        if j < 4:
            sc[:, j] = s[:, j] & 63
            mn[:, j] = s[:, j + 4] & 63
        else:
            sc[:, j] = (s[:, j + 4] & 0xF) | ((s[:, j - 4] >> 6) << 4)
            mn[:, j] = (s[:, j + 4] >> 4) | ((s[:, j] >> 6) << 4)
    return sc, mn


def deq_q45k(raw, five):
    size = 176 if five else 144
    b = blocks(raw, size)
    n = b.shape[0]
    d = f16(b[:, 0:2])
    dmin = f16(b[:, 2:4])
    sc, mn = scale_min_k4(b[:, 4:16])
    if five:
        qh = b[:, 16:48].astype(np.int32)
        qs = b[:, 48:176].astype(np.int32)
    else:
        qs = b[:, 16:144].astype(np.int32)
    out = np.zeros((n, 256), F32)
    for j in range(8):                     # sub-block j: 32 elements
        chunk = qs[:, 32 * (j // 2):32 * (j // 2) + 32]
        lv = (chunk & 0xF) if j % 2 == 0 else (chunk >> 4)
        if five:
            lv = lv + 16 * ((qh >> j) & 1)
        d1 = (d * sc[:, j].astype(F32))[:, None]
        m1 = (dmin * mn[:, j].astype(F32))[:, None]
        out[:, 32 * j:32 * j + 32] = d1 * lv.astype(F32) - m1
    return out.ravel()


def deq_q6k(raw):
    b = blocks(raw, 210)
    n = b.shape[0]
    ql = b[:, 0:128].astype(np.int32)
    qh = b[:, 128:192].astype(np.int32)
    sc = b[:, 192:208].view(np.int8).astype(F32)
    d = f16(b[:, 208:210])
    out = np.zeros((n, 256), F32)
    for e in range(256):
        half, r = divmod(e, 128)           # 128-element halves
        g, l = divmod(r, 32)               # four 32-element groups per half
        low = ql[:, 64 * half + l + (32 if g in (1, 3) else 0)]
        low = (low & 0xF) if g < 2 else (low >> 4)
        high = (qh[:, 32 * half + l] >> (2 * g)) & 3
        q = (low | (high << 4)) - 32
        s = sc[:, e // 16]
        out[:, e] = (d * s) * q.astype(F32)
    return out.ravel()


def low2(qs):
    """2-bit fields of Q2_K / Q3_K (n, 64) -> (n, 256): element 128h + 32g + l is bits 2g of qs[32h + l]."""
    out = np.zeros((qs.shape[0], 256), np.int32)
    for h in range(2):
        for g in range(4):
            out[:, 128 * h + 32 * g:128 * h + 32 * g + 32] = (qs[:, 32 * h:32 * h + 32] >> (2 * g)) & 3
    return out


def deq_q2k(raw):
    b = blocks(raw, 84)
    sc = b[:, 0:16].astype(np.int32)
    q = low2(b[:, 16:80].astype(np.int32))
    d = f16(b[:, 80:82])[:, None]
    dmin = f16(b[:, 82:84])[:, None]
    s = np.repeat(sc, 16, axis=1)                  # sub-block e // 16
    return ((d * (s & 0xF).astype(F32)) * q.astype(F32) - dmin * (s >> 4).astype(F32)).ravel()


def deq_q3k(raw):
    b = blocks(raw, 110)
    hm = b[:, 0:32].astype(np.int32)
    q = low2(b[:, 32:96].astype(np.int32))
    s12 = b[:, 96:108].astype(np.int32)
    d = f16(b[:, 108:110])[:, None]
    sc = np.zeros((b.shape[0], 16), np.int32)
    for j in range(16):                            # 4 low bits in bytes 0-7 (low, then high nibbles), 2 high
        low = (s12[:, j] & 0xF) if j < 8 else (s12[:, j - 8] >> 4)
        sc[:, j] = low | (((s12[:, 8 + j % 4] >> (2 * (j // 4))) & 3) << 4)
    e = np.arange(256)
    hbit = (hm[:, e % 32] >> (e // 32)) & 1        # element e: bit e // 32 of hmask[e % 32]
    lv = q - 4 * (1 - hbit)
    return ((d * (np.repeat(sc, 16, axis=1) - 32).astype(F32)) * lv.astype(F32)).ravel()


IQ4_LEVELS = np.array([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113], dtype=F32)


def iq4_nibbles(qs):
    """16 bytes per 32 elements (n, 16k) -> level values (n, 32k): element j of each group of 32 is the
    low nibble of byte j, element j + 16 the high nibble."""
    q = qs.astype(np.int32).reshape(qs.shape[0], -1, 16)
    idx = np.concatenate([q & 0xF, q >> 4], axis=2)
    return IQ4_LEVELS[idx].reshape(qs.shape[0], -1)


def deq_iq4nl(raw):
    b = blocks(raw, 18)
    d = f16(b[:, 0:2])[:, None]
    return (d * iq4_nibbles(b[:, 2:18])).ravel()


def deq_iq4xs(raw):
    b = blocks(raw, 136)
    d = f16(b[:, 0:2])
    sh = b[:, 2].astype(np.int32) | (b[:, 3].astype(np.int32) << 8)
    sl = b[:, 4:8].astype(np.int32)
    ls = np.zeros((b.shape[0], 8), np.int32)
    for ib in range(8):                            # low 4 bits: nibble ib % 2 of scales_l[ib // 2]
        ls[:, ib] = ((sl[:, ib // 2] >> (4 * (ib % 2))) & 0xF) | (((sh >> (2 * ib)) & 3) << 4)
    dl = d[:, None] * (ls - 32).astype(F32)        # (n, 8) sub-block scales in float32
    v = iq4_nibbles(b[:, 8:136]).reshape(-1, 8, 32)
    return (dl[:, :, None] * v).ravel()


def deq_q8k(raw):
    b = blocks(raw, 292)
    d = b[:, 0:4].copy().view(F32)
    q = b[:, 4:260].view(np.int8).astype(F32)
    return (d * q).ravel()


def dequantize(kind, raw):
    if kind == "f32":
        return np.frombuffer(raw, dtype=F32)
    if kind == "f16":
        return np.frombuffer(raw, dtype=np.float16).astype(F32)
    if kind == "bf16":
        u = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16
        return u.view(F32)
    if kind in ("q4_0", "q4_1", "q5_0", "q5_1", "q8_0"):
        return deq_legacy(raw, kind)
    if kind in ("q4_k", "q5_k"):
        return deq_q45k(raw, kind == "q5_k")
    if kind == "q6_k":
        return deq_q6k(raw)
    if kind == "q2_k":
        return deq_q2k(raw)
    if kind == "q3_k":
        return deq_q3k(raw)
    if kind == "q8_k":
        return deq_q8k(raw)
    if kind == "iq4_nl":
        return deq_iq4nl(raw)
    if kind == "iq4_xs":
        return deq_iq4xs(raw)
    raise SystemExit("unknown dtype " + kind)


def quantize(kind, x):
    """Legacy reference quantizers (GGML's scale choice and rounding), float32 arithmetic."""
    x = x.reshape(-1, 32).astype(F32)
    out = bytearray()
    for blk in x:
        if kind in ("q4_0", "q5_0", "q8_0"):
            amax_i = int(np.argmax(np.abs(blk)))   # first index of the largest |x|
            amax = abs(blk[amax_i])
            if kind == "q8_0":
                d = F32(amax / F32(127))
                idv = F32(1) / d if d != 0 else F32(0)
                prod = blk * idv
                t = np.trunc(prod)                  # roundf: halves away from zero, exact in any case
                q = t + np.where(np.abs(prod - t) >= F32(0.5), np.sign(prod), F32(0))
                out += np.float16(d).tobytes() + q.astype(np.int8).tobytes()
                continue
            mx = blk[amax_i]
            lim, off = (15, F32(8.5)) if kind == "q4_0" else (31, F32(16.5))
            d = F32(mx / F32(-8 if kind == "q4_0" else -16))
            idv = F32(1) / d if d != 0 else F32(0)
            lv = np.minimum(lim, np.trunc(blk * idv + off).astype(np.int32))
            lo, hi = lv[:16], lv[16:]
            out += np.float16(d).tobytes()
            if kind == "q5_0":
                word = 0
                for j in range(16):
                    word |= ((int(lo[j]) >> 4) & 1) << j
                    word |= ((int(hi[j]) >> 4) & 1) << (j + 16)
                out += int(word).to_bytes(4, "little")
            out += ((lo & 0xF) | ((hi & 0xF) << 4)).astype(np.uint8).tobytes()
        else:
            mn, mx = blk.min(), blk.max()
            lim = 15 if kind == "q4_1" else 31
            d = F32((mx - mn) / F32(lim))
            idv = F32(1) / d if d != 0 else F32(0)
            lv = np.minimum(lim, np.trunc((blk - mn) * idv + F32(0.5)).astype(np.int32))
            lo, hi = lv[:16], lv[16:]
            out += np.float16(d).tobytes() + np.float16(mn).tobytes()
            if kind == "q5_1":
                word = 0
                for j in range(16):
                    word |= ((int(lo[j]) >> 4) & 1) << j
                    word |= ((int(hi[j]) >> 4) & 1) << (j + 16)
                out += int(word).to_bytes(4, "little")
            out += ((lo & 0xF) | ((hi & 0xF) << 4)).astype(np.uint8).tobytes()
    return bytes(out)


def main():
    mode, kind, src, dst = sys.argv[1], sys.argv[2].lower(), sys.argv[3], sys.argv[4]
    raw = open(src, "rb").read()
    with np.errstate(all="ignore"):
        if mode == "deq":
            data = dequantize(kind, raw).astype(F32).tobytes()
        else:
            data = quantize(kind, np.frombuffer(raw, dtype=F32))
    open(dst, "wb").write(data)


if __name__ == "__main__":
    main()
