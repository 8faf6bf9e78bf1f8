// Element loops run per chunk of one tensor so the compiler vectorises them; tensors bigger than a
// chunk are split over the thread pool. Scalar factors are computed in double (as Python does for
// torch's scalar arguments) and rounded to f32 once; element arithmetic keeps torch's op order.
#include "train/optim.h"
#include "train/optim_kernels.h"
#include <math.h>
#include <stdlib.h>

#define CHUNK 32768

// torch's CPU kernels (AVX2 build) fuse two of AdamW's multiply-adds: add_(g, alpha) is fmadd(g, alpha, m)
// and addcmul_ contracts to fma((1-b2)*g, g, v). Matching that (checked bit for bit against torch 1.13)
// needs real FMA: fmaf here (correct but a libm call on baseline x86-64), vfmadd in optim_avx2.c.
void adamw_update_ref(float *restrict w, float *restrict m, float *restrict v, const float *restrict g, int64_t n,
                      float decay, float neg_step, float b1, float omb1, float b2, float omb2, float bc2_sqrt,
                      float eps) {
    for (int64_t i = 0; i < n; i++) {
        w[i] = w[i] * decay;                                // param.mul_(1 - lr*wd)
        m[i] = fmaf(g[i], omb1, m[i] * b1);                 // exp_avg.mul_(b1).add_(g, alpha=1-b1)
        v[i] = fmaf(omb2 * g[i], g[i], v[i] * b2);          // exp_avg_sq.mul_(b2).addcmul_(g, g, value=1-b2)
        const float denom = sqrtf(v[i]) / bc2_sqrt + eps;   // (v.sqrt() / bc2_sqrt).add_(eps)
        w[i] = w[i] + neg_step * m[i] / denom;              // param.addcdiv_(m, denom, value=-step_size)
    }
}

static int g_have_fma;
int optim_use_simd(int on) {
    int prev = g_have_fma;
    g_have_fma = on && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return prev;
}
__attribute__((constructor)) static void optim_detect(void) { optim_use_simd(1); }   // elements per task: amortises dispatch, still balances across threads

typedef struct { optim_param *p; int group; int64_t i0, i1; } task_desc;

enum { OP_NORM, OP_SCALE, OP_ZERO, OP_ADAMW };

typedef struct {
    task_desc *tasks;
    int64_t n_tasks;
    int op;
    float scale;
    // AdamW per group: decay = 1 - lr*wd, neg_step = -lr/bc1, bc2_sqrt
    const float *decay, *neg_step;
    float b1, omb1, b2, omb2, eps, bc2_sqrt;
    double *partial;   // OP_NORM: sum of squares per task
} job;

static void run_task(void *ctx, int64_t t, int thread) {
    (void)thread;
    job *j = ctx;
    const task_desc *d = &j->tasks[t];
    const int64_t i0 = d->i0, i1 = d->i1;
    float *restrict g = d->p->g;
    switch (j->op) {
    case OP_NORM: {
        float acc[8] = {0};   // 8 f32 lanes (vectorisable), combined in double per chunk
        int64_t i = i0;
        for (; i + 8 <= i1; i += 8)
            for (int l = 0; l < 8; l++) acc[l] += g[i + l] * g[i + l];
        double s = 0;
        for (; i < i1; i++) s += (double)g[i] * g[i];
        for (int l = 0; l < 8; l++) s += acc[l];
        j->partial[t] = s;
        break;
    }
    case OP_SCALE: {
        const float s = j->scale;
        for (int64_t i = i0; i < i1; i++) g[i] *= s;
        break;
    }
    case OP_ZERO:
        for (int64_t i = i0; i < i1; i++) g[i] = 0;
        break;
    case OP_ADAMW: {
        float *w = d->p->p, *m = d->p->m, *v = d->p->v;
        const float decay = j->decay[d->group], neg_step = j->neg_step[d->group];
        const float b1 = j->b1, omb1 = j->omb1, b2 = j->b2, omb2 = j->omb2, eps = j->eps, bc2 = j->bc2_sqrt;
        if (g_have_fma) {
            adamw_update_avx2(w + i0, m + i0, v + i0, g + i0, i1 - i0, decay, neg_step, b1, omb1, b2, omb2, bc2, eps);
            break;
        }
        adamw_update_ref(w + i0, m + i0, v + i0, g + i0, i1 - i0, decay, neg_step, b1, omb1, b2, omb2, bc2, eps);
        break;
    }
    }
}

// Splits every parameter into CHUNK-sized tasks and runs `op` over them.
static void run_op(job *j, optim_group *groups, int n_groups, tpool *pool) {
    int64_t n = 0;
    for (int gi = 0; gi < n_groups; gi++)
        for (int pi = 0; pi < groups[gi].n_params; pi++) n += (groups[gi].params[pi].n + CHUNK - 1) / CHUNK;
    task_desc stack[64];
    task_desc *tasks = n <= 64 ? stack : malloc((size_t)n * sizeof *tasks);
    double pstack[64];
    double *partial = j->op != OP_NORM || n <= 64 ? pstack : malloc((size_t)n * sizeof *partial);
    if (!tasks || !partial) {
        // no memory for the task list: do the work serially one parameter chunk at a time
        if (tasks != stack) free(tasks);
        if (partial != pstack) free(partial);
        double s = 0;
        for (int gi = 0; gi < n_groups; gi++)
            for (int pi = 0; pi < groups[gi].n_params; pi++)
                for (int64_t i0 = 0; i0 < groups[gi].params[pi].n; i0 += CHUNK) {
                    task_desc one = {&groups[gi].params[pi], gi, i0,
                                     i0 + CHUNK < groups[gi].params[pi].n ? i0 + CHUNK : groups[gi].params[pi].n};
                    double ps = 0;
                    job jj = *j;
                    jj.tasks = &one;
                    jj.partial = &ps;
                    run_task(&jj, 0, 0);
                    s += ps;
                }
        if (j->op == OP_NORM) j->partial[0] = s;
        return;
    }
    n = 0;
    for (int gi = 0; gi < n_groups; gi++)
        for (int pi = 0; pi < groups[gi].n_params; pi++) {
            optim_param *p = &groups[gi].params[pi];
            for (int64_t i0 = 0; i0 < p->n; i0 += CHUNK)
                tasks[n++] = (task_desc){p, gi, i0, i0 + CHUNK < p->n ? i0 + CHUNK : p->n};
        }
    double *out = j->partial;
    j->tasks = tasks;
    j->n_tasks = n;
    j->partial = partial;
    tpool_run(n > 1 ? pool : NULL, n, run_task, j);
    if (j->op == OP_NORM) {
        double s = 0;
        for (int64_t t = 0; t < n; t++) s += partial[t];   // fixed order: same result for any thread count
        out[0] = s;
    }
    if (tasks != stack) free(tasks);
    if (partial != pstack) free(partial);
}

void adamw_init(adamw *opt) {
    opt->beta1 = 0.9;
    opt->beta2 = 0.999;
    opt->eps = 1e-8;
    opt->step = 0;
}

double optim_grad_norm(const optim_group *groups, int n_groups, tpool *pool) {
    double s = 0;
    job j = {.op = OP_NORM, .partial = &s};
    run_op(&j, (optim_group *)groups, n_groups, pool);   // OP_NORM only reads
    return sqrt(s);
}

void optim_scale_grads(optim_group *groups, int n_groups, double scale, tpool *pool) {
    job j = {.op = OP_SCALE, .scale = (float)scale};
    run_op(&j, groups, n_groups, pool);
}

void optim_zero_grads(optim_group *groups, int n_groups, tpool *pool) {
    job j = {.op = OP_ZERO};
    run_op(&j, groups, n_groups, pool);
}

double optim_clip_grad_norm(optim_group *groups, int n_groups, double max_norm, tpool *pool) {
    double norm = optim_grad_norm(groups, n_groups, pool);
    if (max_norm > 0 && isfinite(norm)) {
        // torch computes the coefficient on f32 tensors: max_norm / (norm + 1e-6), clamped to 1
        float coef = (float)max_norm / ((float)norm + 1e-6f);
        if (coef < 1.0f) optim_scale_grads(groups, n_groups, coef, pool);
    }
    return norm;
}

void adamw_step(adamw *opt, optim_group *groups, int n_groups, double lr, tpool *pool) {
    opt->step++;
    const double t = (double)opt->step;
    const double bc1 = 1.0 - pow(opt->beta1, t), bc2 = 1.0 - pow(opt->beta2, t);
    float dstack[16], sstack[16];
    float *decay = n_groups <= 16 ? dstack : malloc((size_t)n_groups * sizeof *decay);
    float *neg_step = n_groups <= 16 ? sstack : malloc((size_t)n_groups * sizeof *neg_step);
    if (!decay || !neg_step) {   // no memory for per-group factors: step the groups one at a time
        if (decay != dstack) free(decay);
        if (neg_step != sstack) free(neg_step);
        for (int gi = 0; gi < n_groups; gi++) {
            adamw one = *opt;
            one.step--;
            adamw_step(&one, &groups[gi], 1, lr, pool);
        }
        return;
    }
    for (int gi = 0; gi < n_groups; gi++) {
        double glr = lr * (groups[gi].lr_scale > 0 ? groups[gi].lr_scale : 1.0);
        decay[gi] = (float)(1.0 - glr * groups[gi].weight_decay);
        neg_step[gi] = (float)(-(glr / bc1));
    }
    job j = {.op = OP_ADAMW, .decay = decay, .neg_step = neg_step,
             .b1 = (float)opt->beta1, .omb1 = (float)(1.0 - opt->beta1),
             .b2 = (float)opt->beta2, .omb2 = (float)(1.0 - opt->beta2),
             .eps = (float)opt->eps, .bc2_sqrt = (float)sqrt(bc2)};
    run_op(&j, groups, n_groups, pool);
    if (decay != dstack) free(decay);
    if (neg_step != sstack) free(neg_step);
}
