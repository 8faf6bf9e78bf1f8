// Token embedding lookup (f32 table) and its gradient. Ids are validated by the tokenizer / model
// loader; an out-of-range id here yields a zero row (and no gradient) instead of a wild read.
#include "tensor/ops.h"
#include <string.h>

// out (T, C) = table[ids[t]] * scale, table (V, C). V is not passed, so only negative ids are caught
// here; callers check ids < V.
void embedding_fwd(float *out, const float *table, const int32_t *ids, int64_t T, int64_t C, float scale) {
    for (int64_t t = 0; t < T; t++) {
        float *o = out + t * C;
        if (ids[t] < 0) { memset(o, 0, (size_t)C * sizeof(float)); continue; }
        const float *row = table + (int64_t)ids[t] * C;
        for (int64_t i = 0; i < C; i++) o[i] = row[i] * scale;
    }
}

// dtable[ids[t]] += dout[t] * scale; repeated ids accumulate.
void embedding_bwd(float *dtable, const float *dout, const int32_t *ids, int64_t T, int64_t C, float scale) {
    for (int64_t t = 0; t < T; t++) {
        if (ids[t] < 0) continue;
        float *row = dtable + (int64_t)ids[t] * C;
        const float *d = dout + t * C;
        for (int64_t i = 0; i < C; i++) row[i] += d[i] * scale;
    }
}
