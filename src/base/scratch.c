// See scratch.h: one pthread key, a per-thread table of growable buffers.
#include "base/scratch.h"
#include <pthread.h>
#include <stdlib.h>

typedef struct { float *buf[SCRATCH_SLOTS]; size_t cap[SCRATCH_SLOTS]; } scratch_table;
static pthread_key_t g_key;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void table_free(void *p) {
    scratch_table *t = p;
    if (t)
        for (int i = 0; i < SCRATCH_SLOTS; i++) free(t->buf[i]);
    free(t);
}
static void key_init(void) { (void)pthread_key_create(&g_key, table_free); }

float *scratch_floats(scratch_slot slot, size_t n) {
    if ((int)slot < 0 || slot >= SCRATCH_SLOTS) return NULL;
    pthread_once(&g_once, key_init);
    scratch_table *t = pthread_getspecific(g_key);
    if (!t) {
        t = calloc(1, sizeof *t);
        if (!t) return NULL;
        if (pthread_setspecific(g_key, t)) { free(t); return NULL; }
    }
    if (t->cap[slot] < n || !t->buf[slot]) {
        free(t->buf[slot]);
        t->buf[slot] = aligned_alloc(64, (n + 16) / 16 * 16 * sizeof(float));
        t->cap[slot] = t->buf[slot] ? n : 0;
    }
    return t->buf[slot];
}
