#!/usr/bin/env python3
"""Independent GGUF reader for tests/test_gguf.c (stdlib only). Prints one canonical line per
metadata entry and tensor, with CRC32 checksums of the value/data bytes, so the C reader can be
compared against it line by line.
  header <version> <alignment> <n_kv> <n_tensors> <data_offset>
  kv <key> <type> <crc32 of value bytes>                    (string: its bytes, no length)
  kv <key> 9 <elem type> <n> <crc32>                        (string elements: u64 len + bytes each;
                                                             arrays of arrays: '-')
  tensor <name> <type id> <n_dims> <ne...> <offset> <nbytes> <crc32 of data>
"""
import struct, sys, zlib

SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
# GGML block geometry: type id -> (elements per block, bytes per block)
BLOCKS = {0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34),
          9: (32, 36), 10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210),
          15: (256, 292), 24: (1, 1), 25: (1, 2), 26: (1, 4), 27: (1, 8), 28: (1, 8), 30: (1, 2)}


def main(path):
    b = open(path, "rb").read()
    pos = 0

    def take(n):
        nonlocal pos
        if pos + n > len(b):
            raise SystemExit("truncated")
        v = b[pos:pos + n]
        pos += n
        return v

    u32 = lambda: struct.unpack("<I", take(4))[0]
    u64 = lambda: struct.unpack("<Q", take(8))[0]
    string = lambda: take(u64())

    def skip(t):
        if t == 8:
            string()
        elif t == 9:
            et, n = u32(), u64()
            for _ in range(n):
                skip(et)
        else:
            take(SIZES[t])

    assert take(4) == b"GGUF"
    ver = u32()
    nt, nkv = u64(), u64()
    out, align = [], 32
    for _ in range(nkv):
        key = string().decode("utf-8", "replace")
        t = u32()
        if t == 8:
            out.append("kv %s 8 %08x" % (key, zlib.crc32(string())))
        elif t == 9:
            et, n = u32(), u64()
            start = pos
            for _ in range(n):
                skip(et)
            crc = "-" if et == 9 else "%08x" % zlib.crc32(b[start:pos])
            out.append("kv %s 9 %d %d %s" % (key, et, n, crc))
        else:
            raw = take(SIZES[t])
            if key == "general.alignment":
                align = int.from_bytes(raw, "little")
            out.append("kv %s %d %08x" % (key, t, zlib.crc32(raw)))
    infos = []
    for _ in range(nt):
        name = string().decode()
        nd = u32()
        ne = [u64() for _ in range(nd)]
        t, off = u32(), u64()
        infos.append((name, nd, ne, t, off))
    data = (pos + align - 1) // align * align
    print("header %d %d %d %d %d" % (ver, align, nkv, nt, data))
    print("\n".join(out))
    for name, nd, ne, t, off in infos:
        blk, bb = BLOCKS[t]
        nel = 1
        for x in ne:
            nel *= x
        nbytes = nel // blk * bb
        crc = zlib.crc32(b[data + off:data + off + nbytes])
        print("tensor %s %d %d %s %d %d %08x" % (name, t, nd, " ".join(map(str, ne)), off, nbytes, crc))


if __name__ == "__main__":
    main(sys.argv[1])
