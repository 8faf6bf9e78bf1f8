#include "train/schedule.h"
#include "base/error.h"
#include <math.h>
#include <string.h>

double sched_lr(const lr_schedule *s, int64_t step) {
    if (step < 0) step = 0;
    if (step < s->warmup_steps) {
        int64_t w = s->warmup_steps > 1 ? s->warmup_steps : 1;
        return s->lr * ((double)step / (double)w);
    }
    if (s->kind == SCHED_CONSTANT) return s->lr;
    int64_t span = s->total_steps - s->warmup_steps;
    double p = (double)(step - s->warmup_steps) / (double)(span > 1 ? span : 1);
    if (p > 1) p = 1;   // past total_steps: held at min_lr (transformers' cosine would rise again)
    double f;
    if (s->kind == SCHED_LINEAR) f = 1.0 - p;
    else f = 0.5 * (1.0 + cos(M_PI * p));
    if (f < 0) f = 0;
    return s->min_lr + (s->lr - s->min_lr) * f;
}

static const char *const k_names[] = {"constant", "linear", "cosine"};

int sched_parse_kind(const char *name, sched_kind *out) {
    for (int i = 0; i < 3; i++)
        if (name && !strcmp(name, k_names[i])) { *out = (sched_kind)i; return SLLM_OK; }
    return err_set(SLLM_ERR_ARG, "lr schedule '%s': expected constant, linear or cosine", name ? name : "(null)");
}

const char *sched_kind_name(sched_kind k) { return (unsigned)k < 3 ? k_names[k] : "?"; }

int sched_validate(const lr_schedule *s) {
    if ((unsigned)s->kind > SCHED_COSINE) return err_set(SLLM_ERR_ARG, "lr schedule: bad kind %d", (int)s->kind);
    if (!(s->lr >= 0) || !isfinite(s->lr)) return err_set(SLLM_ERR_ARG, "lr schedule: lr %g must be >= 0", s->lr);
    if (!(s->min_lr >= 0) || s->min_lr > s->lr)
        return err_set(SLLM_ERR_ARG, "lr schedule: min_lr %g must be in [0, lr=%g]", s->min_lr, s->lr);
    if (s->warmup_steps < 0) return err_set(SLLM_ERR_ARG, "lr schedule: warmup_steps %lld < 0", (long long)s->warmup_steps);
    if (s->total_steps < s->warmup_steps)
        return err_set(SLLM_ERR_ARG, "lr schedule: total_steps %lld < warmup_steps %lld", (long long)s->total_steps,
                       (long long)s->warmup_steps);
    return SLLM_OK;
}

json_t *sched_to_json(const lr_schedule *s) {
    return json_pack("{s:s, s:f, s:f, s:I, s:I}", "kind", sched_kind_name(s->kind), "lr", s->lr, "min_lr", s->min_lr,
                     "warmup_steps", (json_int_t)s->warmup_steps, "total_steps", (json_int_t)s->total_steps);
}

int sched_from_json(const json_t *j, lr_schedule *s) {
    const char *kind = NULL;
    double lr = 0, min_lr = 0;
    json_int_t w = 0, n = 0;
    json_error_t e;
    if (!j || json_unpack_ex((json_t *)j, &e, JSON_STRICT, "{s:s, s:F, s:F, s:I, s:I}", "kind", &kind, "lr", &lr,
                             "min_lr", &min_lr, "warmup_steps", &w, "total_steps", &n) != 0)
        return err_set(SLLM_ERR_FORMAT, "lr schedule state: %s", j ? e.text : "missing");
    lr_schedule t = {0};
    int rc = sched_parse_kind(kind, &t.kind);
    if (rc) return rc;
    t.lr = lr;
    t.min_lr = min_lr;
    t.warmup_steps = w;
    t.total_steps = n;
    if ((rc = sched_validate(&t))) return err_wrap(SLLM_ERR_FORMAT, "lr schedule state");
    *s = t;
    return SLLM_OK;
}
