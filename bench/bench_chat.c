// Chat-layer benchmark: chat template rendering and reply parsing per turn, and the cost of
// grammar-constrained sampling per token against unconstrained decoding on the same model.
// Build: make && cc -std=c11 -O2 -D_GNU_SOURCE -pthread -Iinclude -Isrc bench/bench_chat.c build/libsllm.a
//        $(pkg-config --libs jansson libpcre2-8 libutf8proc) -lm -o build/bench_chat   (add -lopenblas if
//        the library was built with it)
// Usage: build/bench_chat MODEL.gguf [-t THREADS] [-n TOKENS] [-r REPS]
//   e.g. sllm init --preset llama-3.2-1b --dtype f16 --vocab ../shared/fixtures/vocab/ggml-vocab-llama-bpe.gguf x.gguf
//        sllm quantize x.gguf x-q4.gguf q4_0 && build/bench_chat x-q4.gguf -t 2
// Decoding runs alternate unconstrained / constrained (ABAB...) so machine noise hits both alike; the
// constrained runs use a random model, whose tokens the grammar rejects almost every step (masking every
// step): an upper bound of the overhead, a trained model mostly passes the one-token check.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/error.h"
#include "base/fileio.h"
#include "base/threadpool.h"
#include "gen/chat.h"
#include "gen/constrain.h"
#include "text/chat_parse.h"
#include "text/chat_template.h"
#include "text/json_schema.h"

static char *slurp(const char *path) {
    char *b = NULL;
    size_t n;
    if (fileio_read_all(path, &b, &n)) { fprintf(stderr, "bench_chat: %s\n", sllm_last_error()); exit(1); }
    return b;
}

static int cmp_d(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }
static double median(double *v, int n) { qsort(v, (size_t)n, sizeof *v, cmp_d); return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]); }

static bool on_tok(void *c, int32_t id, const char *t, size_t l, const sampler *s) { (void)c, (void)id, (void)t, (void)l, (void)s; return true; }

static void bench_template(void) {
    const char *tpls[] = {"qwen3", "llama3.2", "gemma3"};
    const char *cases[] = {"multi_turn", "tools_call"};
    printf("template render (per turn):\n");
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 2; k++) {
            char p[256];
            snprintf(p, sizeof p, "tests/templates/%s.jinja", tpls[i]);
            char *src = slurp(p);
            snprintf(p, sizeof p, "tests/chat_cases/%s.json", cases[k]);
            json_t *c = json_load_file(p, 0, NULL);
            const int N = 300;
            double t0 = gen_now_ms();
            size_t len = 0;
            for (int r = 0; r < N; r++) {
                char *out = NULL;
                if (chat_render(src, json_object_get(c, "messages"), json_object_get(c, "tools"), true,
                                json_object_get(c, "kwargs"), "<s>", "</s>", &out) != SLLM_OK) break;   // (gemma3 refuses tool turns)
                len = strlen(out);
                free(out);
            }
            if (len) printf("  %-18s %-11s %6zu bytes  %8.1f us\n", tpls[i], cases[k], len, (gen_now_ms() - t0) * 1e3 / N);
            json_decref(c);
            free(src);
        }
    // parsing a reply as it streams: reasoning + text + two Hermes tool calls, fed in 4-byte pieces
    const char *reply = "<think>\nThe user wants the weather in Paris and the time in Oslo. I will call both tools, "
                        "then answer briefly.\n</think>\n\nLet me check.\n<tool_call>\n{\"name\": \"get_weather\", "
                        "\"arguments\": {\"city\": \"Paris\", \"unit\": \"celsius\"}}\n</tool_call>\n<tool_call>\n"
                        "{\"name\": \"get_time\", \"arguments\": {\"tz\": \"Europe/Oslo\", \"precise\": false}}\n</tool_call>";
    size_t n = strlen(reply);
    const int N = 3000;
    double t0 = gen_now_ms();
    for (int r = 0; r < N; r++) {
        cp_config cfg = {.format = CP_FORMAT_HERMES, .reasoning = true, .id_seed = 1};
        cp_parser *p = cp_new(&cfg);
        for (size_t i = 0; i < n; i += 4) cp_feed(p, reply + i, n - i < 4 ? n - i : 4, NULL, NULL);
        json_t *m = cp_finish(p, NULL, NULL);
        json_decref(m);
        cp_free(p);
    }
    printf("reply parse (%zu bytes in 4-byte deltas, reasoning + 2 tool calls): %.1f us per turn\n", n, (gen_now_ms() - t0) * 1e3 / N);
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: bench_chat MODEL.gguf [-t THREADS] [-n TOKENS] [-r REPS]\n"); return 2; }
    int threads = 0, n_tok = 48, reps = 3;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-t")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-n")) n_tok = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-r")) reps = atoi(argv[i + 1]);
    }
    bench_template();

    sllm_model *m = NULL;
    tok *t = NULL;
    if (model_load(argv[1], &m) != SLLM_OK || gen_load_tokenizer(m, &t) != SLLM_OK) { fprintf(stderr, "%s\n", sllm_last_error()); return 1; }
    tpool *pool = tpool_new(threads);
    model_session *s = NULL;
    if (model_session_new(m, 512, 0, pool, &s) != SLLM_OK) { fprintf(stderr, "%s\n", sllm_last_error()); return 1; }
    double t0 = gen_now_ms();
    constrain_vocab *cv = constrain_vocab_new(t, m->hp.n_vocab);
    printf("\nmodel %s: vocab %d; constrain_vocab_new %.1f ms (once per model)\n", argv[1], m->hp.n_vocab, gen_now_ms() - t0);
    int32_t *prompt = NULL; int n_prompt = 0;
    const char *pt = "Reply with a JSON object describing a person:";
    tok_encode(t, pt, strlen(pt), true, false, &prompt, &n_prompt);
    json_t *schema = json_load_file("tests/schemas/person.json", 0, NULL);
    char *gbnf = slurp("tests/grammars/json.gbnf");
    const char *names[] = {"none", "schema person.json", "grammar json.gbnf"};
    double ms[3][16];
    constrain_stats cst[3] = {{0}};
    if (reps > 16) reps = 16;
    for (int r = 0; r < reps; r++)
        for (int k = 0; k < 3; k++) {
            sample_params sp;
            sample_params_default(&sp);
            sp.seed = (uint64_t)r + 1;
            sampler *smp = sampler_new(&sp, m->hp.n_vocab);
            constrain *c = NULL;
            if (k == 1 && constrain_new_schema(cv, schema, &c) != SLLM_OK) { fprintf(stderr, "%s\n", sllm_last_error()); return 1; }
            if (k == 2 && constrain_new_gbnf(cv, gbnf, strlen(gbnf), "json.gbnf", NULL, &c) != SLLM_OK) { fprintf(stderr, "%s\n", sllm_last_error()); return 1; }
            if (c) constrain_set_sampling(c, &sp);
            model_session_reset(s);
            gen_opts go = {.n_predict = n_tok, .ignore_eog = true};
            gen_stats st;
            if (constrain_generate(s, t, smp, c, prompt, n_prompt, &go, on_tok, NULL, &st) != SLLM_OK) { fprintf(stderr, "%s\n", sllm_last_error()); return 1; }
            ms[k][r] = st.decode_ms / (st.n_gen > 1 ? st.n_gen - 1 : 1);
            if (c) {
                const constrain_stats *cs = constrain_get_stats(c);
                cst[k].steps += cs->steps, cst[k].fast_ok += cs->fast_ok, cst[k].walks += cs->walks, cst[k].masks += cs->masks;
                cst[k].mask_ms += cs->mask_ms;
            }
            constrain_free(c);
            sampler_free(smp);
        }
    double base = median(ms[0], reps);
    printf("decode, %d tokens after a %d-token prompt, %d threads, median of %d (ms per token):\n", n_tok, n_prompt, tpool_size(pool), reps);
    for (int k = 0; k < 3; k++) {
        double med = median(ms[k], reps);
        printf("  %-20s %8.2f ms/token  %+6.1f%%", names[k], med, 100.0 * (med - base) / base);
        if (k) printf("   (%lld steps: %lld sampled token passed, %lld top-k walks, %lld masks; %.3f ms masking per step)", (long long)cst[k].steps,
                      (long long)cst[k].fast_ok, (long long)cst[k].walks, (long long)cst[k].masks, cst[k].mask_ms / (double)(cst[k].steps ? cst[k].steps : 1));
        printf("\n");
    }
    free(gbnf);
    json_decref(schema);
    free(prompt);
    constrain_vocab_free(cv);
    model_session_free(s);
    tpool_free(pool);
    tok_free(t);
    model_free(m);
    return 0;
}
