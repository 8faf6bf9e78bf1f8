// Internal to the matmul: the layouts and kernel tables of the packed / tiled paths (mm_paths: AVX-512 in
// matmul_avx512.c, AVX2 in matmul_paths_avx2.c), and the scalar twins (matmul.c) every one of those
// kernels is tested against. Not for use outside tensor/.
//
// Paths beside the generic per-row dot kernels of matmul.h (the AVX-512 table has all of them; the AVX2
// table the f32 GEMM, the F16 / BF16 decode and the r16 products of the types in its r16_types):
//  - decode (T == 1): the activation row is quantized into the "xd" layout below, arranged so that one
//    512-bit load of activations lines up with 4 Q4_0 blocks (or 2 Q8_0 blocks) loaded from the weight,
//    with per-lane scale and offset vectors, so a weight row is streamed with ~3.5 vector ops per block
//    and one horizontal sum per row.
//  - prefill (T >= MM_PACK_MIN_T): 16 weight rows at a time are unpacked once per call into a "panel"
//    (u8 levels, 4 consecutive elements of one row per 32-bit lane, 16 rows across the 16 lanes), which
//    a register-tiled kernel multiplies with up to 8 activation rows using broadcast activation words,
//    so each unpacked weight serves every activation row and the block scales are applied once per
//    (block, 16 rows, activation row).
#ifndef SLLM_TENSOR_MATMUL_KERNELS_H
#define SLLM_TENSOR_MATMUL_KERNELS_H
#include "tensor/matmul.h"
#include "tensor/quant.h"

// T from which the packed-panel / f32 GEMM paths run. 2, so that a prompt prefilled in chunks gives the
// same bits as in one batch (each output's summation order does not depend on T in those paths); for
// T = 2..7 they cost about what the per-row kernels cost (the packing is one pass over the weights).
#define MM_PACK_MIN_T 2
#define MM_TILE_T 8         // activation rows per packed-tile call (at most)

// ---- decode activation layout "xd" (dtype t in {Q4_0, Q8_0}; K a multiple of 32, nb = K/32) ----
// G = blocks per 512-bit group (4 for Q4_0, 2 for Q8_0), ng = nb / G full groups, then nb % G tail blocks.
//   int8  qs[K]      group g holds its G*32 values: Q4_0 puts elements 0..15 of its 4 blocks first (the
//                    low nibbles of the weight bytes), then elements 16..31; Q8_0 and tail blocks keep
//                    natural order.
//   float dl[16*ng]  per 32-bit lane of a group's product vector: the x scale of that lane's block
//   int32 sl[16*ng]  per lane: -off * sum(block's qs) in the block's first lane, 0 in the others
//                    (off = 8 for Q4_0; 128 for Q8_0, whose weights enter the u8 x s8 product as w + 128)
//   float d[nb]      per block scale, int32 seed[nb] per block -off*sum (the tail blocks use these)
typedef struct { int G, ng, nb; int8_t *qs; float *dl; int32_t *sl; float *d; int32_t *seed; } mm_xd_view;
bool mm_xd_supported(dtype t);
size_t mm_xd_bytes(dtype t, int64_t K);                       // bytes of one xd row (multiple of 64)
mm_xd_view mm_xd_map(dtype t, int64_t K, void *xd);          // xd must be 64-byte aligned
void mm_xd_quantize_ref(dtype t, const float *x, int64_t K, void *xd);
// out[r] = dot(weight row r, x) for r < nrows; rows wrow_bytes apart.
typedef void (*mm_xd_dot_fn)(int64_t K, const void *w, size_t wrow_bytes, int64_t nrows, const void *xd, float *out);
typedef void (*mm_xd_quant_fn)(dtype t, const float *x, int64_t K, void *xd);
void mm_xd_dot_q4_0_ref(int64_t K, const void *w, size_t wrow_bytes, int64_t nrows, const void *xd, float *out);
void mm_xd_dot_q8_0_ref(int64_t K, const void *w, size_t wrow_bytes, int64_t nrows, const void *xd, float *out);

// ---- packed panel of 16 weight rows of a 32-block quant (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) ----
// Per block b (PB = mm_panel_block_bytes(t) bytes each):
//   u8 lv[8][64]   lv[j][4*l + i] = level of row l, element 4j + i, as an unsigned byte
//                  (Q4: q, Q5: q, Q8_0: q + 128; value = dw * (level - off) + m)
//   float dw[16]   row scales (0 for padding rows)
//   float m[16]    row minimums (Q4_1 / Q5_1 only)
// Activations are blk_q8a rows whose `seed` holds -off * sum (mm_q8a_seed).
bool mm_panel_supported(dtype t);
size_t mm_panel_block_bytes(dtype t);
int mm_panel_offset(dtype t);                                  // off above
void mm_pack_panel(dtype t, const void *W, size_t wrow_bytes, int nrows, int64_t K, void *panel);
void mm_q8a_seed(dtype t, blk_q8a *x, int64_t nb);
// With d = dot(panel row l, activation row r) for r < TT (<= MM_TILE_T, activation rows xs bytes apart)
// and l < nvalid: y[r*ldy + l] = acc ? y[r*ldy + l] + d : d + (bias ? bias[l] : 0).
// x: activation rows xs bytes apart, blk_q8a (blk_q8_K for Q4_K r16 panels).
typedef void (*mm_tile_fn)(dtype t, const void *panel, int64_t K, const void *x, size_t xs, int TT, float *y,
                           size_t ldy, int nvalid, const float *bias, int acc);
// Inside an mm_tile_fn (its parameters in scope): fn(..., TT, ..., extra args) with TT (1..MM_TILE_T) a
// compile-time constant, one instantiation per value (the kernels keep a register per activation row).
#define TT_CASES(fn, ...)                                                            \
    switch (TT) {                                                                    \
    case 1: fn(panel, K, x, xs, 1, y, ldy, nvalid, bias, acc, __VA_ARGS__); break;   \
    case 2: fn(panel, K, x, xs, 2, y, ldy, nvalid, bias, acc, __VA_ARGS__); break;   \
    case 3: fn(panel, K, x, xs, 3, y, ldy, nvalid, bias, acc, __VA_ARGS__); break;   \
    case 4: fn(panel, K, x, xs, 4, y, ldy, nvalid, bias, acc, __VA_ARGS__); break;   \
    case 5: fn(panel, K, x, xs, 5, y, ldy, nvalid, bias, acc, __VA_ARGS__); break;   \
    case 6: fn(panel, K, x, xs, 6, y, ldy, nvalid, bias, acc, __VA_ARGS__); break;   \
    case 7: fn(panel, K, x, xs, 7, y, ldy, nvalid, bias, acc, __VA_ARGS__); break;   \
    default: fn(panel, K, x, xs, 8, y, ldy, nvalid, bias, acc, __VA_ARGS__); break;  \
    }
_Static_assert(MM_TILE_T == 8, "TT_CASES instantiates TT = 1..8");
void mm_tile_q32_ref(dtype t, const void *panel, int64_t K, const void *x, size_t xs, int TT, float *y,
                     size_t ldy, int nvalid, const float *bias, int acc);

// ---- weights repacked once at load: "r16" (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K,
// IQ4_NL, IQ4_XS; mm_pack) ----
// Panel p holds weight rows 16p..16p+15 (rows past N are zero blocks) and its K/32 blocks one after the
// other, PB = mm_r16_block_bytes(t) bytes each; panels follow each other, so the rows a task owns are
// one linear stream (the hardware prefetcher follows it; the decode kernel adds an L2 prefetch).
//   Q8_0 (PB 544): u8 lv[8][64], lv[j][4l + i] = level of row l, element 4j + i, plus 128 (the panel
//                  layout above), then f16 d[16] (row scales, raw bits)
//   Q4_0 (PB 288): u8 nb[4][64], nb[j][4l + i] = byte 4j + i of row l's qs (low nibble: element 4j + i,
//                  high nibble: element 16 + 4j + i), then f16 d[16]
//   IQ4_NL (PB 288): Q4_0's bytes (the nibbles index the 16 IQ4 levels)
//   Q4_1 (PB 320): Q4_0's nibble registers, then f16 d[16], f16 m[16] (value = d * q + m)
//   Q5_0 (PB 352) / Q5_1 (PB 384): Q4_0's nibble registers, then u64 mask[8] (mask j, bit 4l + i: the
//                  fifth bit of row l's element 4j + i; masks 4..7 for elements 16..31), then f16
//                  d[16] (Q5_1: then f16 m[16])
//   Q4_K (2304 bytes per 256-column super-block s, i.e. 288 per 32 columns):
//                  u8 qs[4][8][64], qs[g][j][4l + i] = byte 32g + 4j + i of row l's qs (low nibble:
//                  element 64g + 4j + i, high nibble: element 64g + 32 + 4j + i), then
//                  u8 sc[12][16], sc[i][l] = row l's packed 6-bit scales/mins byte i, then
//                  f16 d[16], f16 dmin[16]
//   Q5_K (2816 bytes per super-block, 352 per 32 columns): Q4_K's qs registers, then u8 hb[8][64]
//                  (word j, row l, byte i: the fifth bits of qh byte 4j + i, group g's two at bit
//                  {4, 5, 0, 1}[g] and 2 above, so one shift puts them at 4 and 6), then Q4_K's scales
//                  and d / dmin
//   Q6_K (3360 bytes per super-block, 420 per 32 columns): for half h (elements 128h..) and word j
//                  three registers u8 v[h][j][3][64] (v[h][j][r][4l + i], row l, byte i): element
//                  128h + 32c + 4j + i has its 6-bit level c in the low 6 bits of register c (c < 3) and
//                  level 3 spread over their top 2 bits (bits 0-1 in register 0, 2-3 in 1, 4-5 in 2),
//                  so three levels are one AND each and the fourth, scaled by 4, two shifts and two
//                  logic ops; then i8 scales[16][16] ([sub-block][row]), then f16 d[16]
// Exactly the bytes of the 16 source rows (16 x 34 / 18 / 20 / 22 / 24 / 144 / 176 / 210), so a decode step
// reads what it read before, but without the per-block scale shuffles: ~2.5 (Q8_0) / ~5 (Q4_0) vector ops per 64 bytes.
// Activations of the 32-blocks are blk_q8a rows seeded with -off * sum (mm_q8a_seed), as for the panel
// tiles, and the arithmetic is the panel tiles' (integer block sums, then one multiply and one FMA per
// block, one more FMA for a minimum), so a product over r16 weights has the bits of the packed-panel
// prefill, for any T. Q4_K / Q5_K take
// blk_q8_K rows; per super-block and row the integer sums sumi = sum_j sc_j * dot_j and
// summ = sum_j m_j * bsum_j are exact, then acc += sumi * (d * dx), acc -= summ * (dmin * dx): the decode
// kernel and the tile do exactly these steps, so Q4_K decode too has the bits of its row in a prefill.
// Q6_K likewise with sumi = sum_j sc_j * (dot_j - 32 * bsum_j) and one FMA.
// Offsets of the layouts above, shared by the kernels and their twins (bytes).
#define R16_Q4K_SB 2304            // a Q4_K super-block of 16 rows
#define R16_Q4K_SC 2048            // its scale bytes; d[16] and dmin[16] follow 192 and 224 bytes on
#define R16_Q5K_SB 2816            // a Q5_K super-block: the fifth bits between the nibbles and the scales
#define R16_Q5K_HB 2048            // its fifth-bit registers
#define R16_Q5K_SC (2048 + 512)    // its scale bytes, then d / dmin as Q4_K's
#define R16_Q6K_SB 3360            // a Q6_K super-block
#define R16_Q6K_SC 3072            // its int8 scales[16][16]
#define R16_Q6K_D (3072 + 256)     // its f16 d[16]
// IQ4_XS (2176 bytes per super-block, 272 per 32 columns): sub-block ib's nibbles in Q4_0's register
// order at 256 ib, then u8 scales_l[4][16] ([byte][row]), u16 scales_h[16], f16 d[16] (the rows'
// bytes moved, so a panel holds exactly its 16 rows' bytes).
// Q3_K (1760 bytes per super-block, 220 per 32 columns): u8 qs[2][8][64] (half h, register j: bytes
// 32h + 4j .. 32h + 4j + 3 of each row's qs), u8 hm[8][64] (register j: hmask bytes 4j .. 4j + 3), then
// u8 scales[12][16] ([byte][row]), f16 d[16]: element 128h + 32s + 4j + i has the low bits
// (qs >> 2s) & 3 of byte i in register qs[h][j] and its high bit at 4h + s of hm[j]'s byte i.
// Q2_K (1344 bytes per super-block, 168 per 32 columns): Q3_K's qs registers, then u8 scales[16][16]
// ([sub-block][row]: scale in the low nibble, min in the high one), f16 d[16], f16 dmin[16].
#define R16_Q2K_SB 1344
#define R16_Q2K_SC 1024
#define R16_Q2K_D 1280
#define R16_Q2K_DMIN 1312
#define R16_Q3K_SB 1760
#define R16_Q3K_HM 1024
#define R16_Q3K_SC 1536
#define R16_Q3K_D 1728
#define R16_IQ4XS_SB 2176
#define R16_IQ4XS_SL 2048
#define R16_IQ4XS_SH 2112
#define R16_IQ4XS_D 2144
bool mm_r16_supported(dtype t);
// Bytes of a panel per 32 columns (a panel of K columns is K / 32 times this).
size_t mm_r16_block_bytes(dtype t);
// One panel from nrows (<= 16) source rows wrow_bytes apart.
void mm_r16_pack_ref(dtype t, const void *W, size_t wrow_bytes, int nrows, int64_t K, void *panel);
// As mm_tile_q32_ref, over one r16 panel (32-blocks: it re-encodes the panel and calls mm_tile_q32_ref;
// K-quants: the integer sums above, element by element).
void mm_r16_tile_ref(dtype t, const void *panel, int64_t K, const void *x, size_t xs, int TT, float *y,
                     size_t ldy, int nvalid, const float *bias, int acc);
// Decode: out[16 * i + l] = dot(row l of panel i, x) for np consecutive panels (one activation row).
// The kernel prefetches ahead of its reads, but never past pf_bytes from `panels` (>= the np panels:
// the caller's later panels may follow, rows another thread reads may not).
typedef void (*mm_r16_dec_fn)(dtype t, const void *panels, int64_t np, int64_t K, const void *x, float *out,
                              size_t pf_bytes);

// ---- f32 GEMM (prefill of F32 / F16 / BF16 weights) ----
// The activations are packed once per call into blocks of MM_GEMM_TB rows, k-major: Xp[tb][k][MM_GEMM_TB]
// (rows past T are zero), so a register tile of MM_GEMM_NR weight rows x MM_GEMM_TB activation rows does
// 2 vector loads + MM_GEMM_NR broadcasts for 2 * MM_GEMM_NR FMAs per k. The weight rows are converted to
// f32 into a per-thread scratch first (no transposition needed on that side).
#define MM_GEMM_NR 12
#define MM_GEMM_TB 32
size_t mm_packx_floats(int64_t T, int64_t K);
void mm_packx_ref(const float *X, int64_t T, int64_t K, float *Xp);
// out[i * MM_GEMM_TB + t] = dot(w row i (rows ldw floats apart), activation t of the packed block xp)
void mm_f32gemm_ref(int64_t K, const float *w, size_t ldw, const float *xp, float *out);
typedef void (*mm_packx_fn)(const float *X, int64_t T, int64_t K, float *Xp);
typedef void (*mm_f32gemm_fn)(int64_t K, const float *w, size_t ldw, const float *xp, float *out);
// dst (n) <- f16 / bf16 / f32 src (n)
typedef void (*mm_tof32_fn)(dtype t, const void *src, float *dst, int64_t n);

typedef struct {
    mm_xd_quant_fn xd_quantize;
    mm_xd_dot_fn xd_dot[DT_COUNT];
    mm_xd_dot_fn dec_f16;          // decode of F16 rows against f32 x (passed as xd)
    mm_xd_dot_fn dec_bf16;         // the same for BF16 rows
    void (*q8a_quantize)(const float *x, blk_q8a *y, int64_t n);
    void (*q8k_quantize)(const float *x, blk_q8_K *y, int64_t n);   // = quantize_row(DT_Q8_K), bit for bit
    mm_tile_fn tile_q32;
    void (*pack)(dtype t, const void *W, size_t wrow_bytes, int nrows, int64_t K, void *panel);
    mm_packx_fn packx;
    mm_f32gemm_fn f32gemm;
    mm_tof32_fn tof32;
    void (*r16_pack)(dtype t, const void *W, size_t wrow_bytes, int nrows, int64_t K, void *panel);
    mm_tile_fn r16_tile;
    mm_r16_dec_fn r16_dec;
    uint64_t r16_types;            // bit t: r16_tile / r16_dec take dtype t (weights are packed at load only then)
} mm_paths;
// Fills the table for ISA_AVX512 (matmul_avx512.c) / ISA_AVX2 (matmul_paths_avx2.c). A NULL entry: that
// path is not taken at this level (the product falls back to the per-row dot kernels).
void mm_paths_avx512(mm_paths *k);
void mm_paths_avx2(mm_paths *k);
// The table for the active ISA level, NULL below AVX2 (tests force each level to run the twins side by side).
const mm_paths *mm_paths_active(void);
// Does table k (may be NULL) take r16 panels of dtype t?
bool mm_paths_r16(const mm_paths *k, dtype t);

// AVX2 forms of the r16 K-quant kernels (matmul_r16k_avx2.c), t in {Q4_K, Q5_K, Q6_K}: the bits of the
// AVX-512 ones (the same integer sums, the same float steps).
void mm_r16k_tile_avx2(dtype t, const void *panel, int64_t K, const void *x, size_t xs, int TT, float *y,
                       size_t ldy, int nvalid, const float *bias, int acc);
void mm_r16k_dec_avx2(dtype t, const void *panels, int64_t np, int64_t K, const void *x, float *out, size_t pf_bytes);
// The same for Q4_1 / Q5_0 / Q5_1 / IQ4_NL (matmul_r16q_avx2.c; blk_q8a activations).
void mm_r16q_tile_avx2(dtype t, const void *panel, int64_t K, const void *x, size_t xs, int TT, float *y,
                       size_t ldy, int nvalid, const float *bias, int acc);
void mm_r16q_dec_avx2(dtype t, const void *panels, int64_t np, int64_t K, const void *x, float *out, size_t pf_bytes);
// The same for Q2_K / Q3_K / IQ4_XS (matmul_r16k2_avx2.c).
void mm_r16k2_tile_avx2(dtype t, const void *panel, int64_t K, const void *x, size_t xs, int TT, float *y,
                        size_t ldy, int nvalid, const float *bias, int acc);
void mm_r16k2_dec_avx2(dtype t, const void *panels, int64_t np, int64_t K, const void *x, float *out, size_t pf_bytes);
#endif
