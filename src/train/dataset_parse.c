// File loaders for training data: .txt, .jsonl, .json, .csv -> ds_record list (see dataset.h).
#include "train/dataset.h"
#include "train/dataset_int.h"
#include "base/error.h"
#include "base/fileio.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <utf8proc.h>

struct ds_source {
    char *path;
    ds_record *r;
    int64_t n, cap;
    ds_load_stats st;
};

typedef struct {
    ds_source *s;
    const ds_load_opts *o;
    ds_warner w;
} ld;

void ds_warn(ds_warner *w, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int limit = w->max == 0 ? 10 : w->max;
    w->count++;
    if (w->fn) { w->fn(w->ctx, msg); return; }
    if (limit < 0 || w->count > limit) return;
    fprintf(stderr, "warning: %s\n", msg);
    if (w->count == limit) fprintf(stderr, "warning: further data warnings are counted but not printed\n");
}

// A malformed record: fail, or warn and count. Returns 0 to go on, or the error code.
static int malformed(ld *L, int64_t line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int malformed(ld *L, int64_t line, const char *fmt, ...) {
    char why[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (L->o->on_error == DS_ON_ERROR_FAIL)
        return err_set(SLLM_ERR_FORMAT, "%s:%lld: %s", L->s->path, (long long)line, why);
    L->s->st.n_malformed++;
    ds_warn(&L->w, "%s:%lld: %s (record skipped)", L->s->path, (long long)line, why);
    return 0;
}

static int push(ld *L, ds_record r) {
    ds_source *s = L->s;
    if (s->n == s->cap) {
        int64_t cap = s->cap ? 2 * s->cap : 256;
        ds_record *p = realloc(s->r, (size_t)cap * sizeof *p);
        if (!p) {
            free(r.text);
            json_decref(r.messages);
            return err_set(SLLM_ERR_NOMEM, "%s: out of memory", s->path);
        }
        s->r = p;
        s->cap = cap;
    }
    s->r[s->n++] = r;
    s->st.n_records++;
    return 0;
}

static int only_space(const char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\n' && p[i] != '\r') return 0;
    return 1;
}

static int valid_utf8(const char *p, size_t n) {
    size_t i = 0;
    while (i < n) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)p + i, (utf8proc_ssize_t)(n - i), &cp);
        if (k <= 0) return 0;
        i += (size_t)k;
    }
    return 1;
}

static int add_text(ld *L, int64_t line, const char *p, size_t n) {
    // trim surrounding blank lines/spaces: they are separators, not content
    while (n && (*p == '\n' || *p == '\r' || *p == ' ' || *p == '\t')) p++, n--;
    while (n && (p[n - 1] == '\n' || p[n - 1] == '\r' || p[n - 1] == ' ' || p[n - 1] == '\t')) n--;
    if (n == 0) return 0;
    if (!valid_utf8(p, n)) return malformed(L, line, "invalid UTF-8");
    char *t = malloc(n + 1);
    if (!t) return err_set(SLLM_ERR_NOMEM, "%s: out of memory", L->s->path);
    memcpy(t, p, n);
    t[n] = 0;
    return push(L, (ds_record){DS_REC_TEXT, t, n, NULL, line});
}

static int64_t count_lines(const char *p, size_t n) {
    int64_t c = 0;
    for (size_t i = 0; i < n; i++) c += p[i] == '\n';
    return c;
}

static int load_txt(ld *L, const char *buf, size_t len) {
    const char *sep = L->o->txt_separator;
    if (sep && *sep) {
        size_t sl = strlen(sep), start = 0;
        int64_t line = 1;
        for (;;) {
            const char *hit = memmem(buf + start, len - start, sep, sl);
            size_t end = hit ? (size_t)(hit - buf) : len;
            // line of the document's first non-blank character
            size_t f = start;
            while (f < end && (buf[f] == '\n' || buf[f] == '\r' || buf[f] == ' ' || buf[f] == '\t')) f++;
            int rc = add_text(L, line + count_lines(buf + start, f - start), buf + start, end - start);
            if (rc) return rc;
            if (!hit) break;
            line += count_lines(buf + start, end + sl - start);
            start = end + sl;
        }
        return 0;
    }
    size_t i = 0, doc = 0;
    int64_t line = 1, doc_line = 1;
    int in_doc = 0;
    while (i < len) {
        size_t e = i;
        while (e < len && buf[e] != '\n') e++;
        int blank = only_space(buf + i, e - i);
        if (L->o->txt_split == DS_TXT_LINES) {
            int rc = add_text(L, line, buf + i, e - i);
            if (rc) return rc;
        } else if (blank) {
            if (in_doc) {
                int rc = add_text(L, doc_line, buf + doc, i - doc);
                if (rc) return rc;
                in_doc = 0;
            }
        } else if (!in_doc) {
            in_doc = 1;
            doc = i;
            doc_line = line;
        }
        i = e + 1;
        line++;
    }
    if (in_doc) return add_text(L, doc_line, buf + doc, len - doc);
    return 0;
}

static json_t *msg(const char *role, const char *content) {
    return json_pack("{s:s, s:s}", "role", role, "content", content);
}

// Wraps user/assistant text as a chat (with the optional system prompt).
static json_t *chat2(const ds_load_opts *o, const char *user, const char *assistant) {
    json_t *a = json_array();
    if (o->system_prompt) json_array_append_new(a, msg("system", o->system_prompt));
    json_array_append_new(a, msg("user", user));
    json_array_append_new(a, msg("assistant", assistant));
    return a;
}

static int empty_sample(ld *L, int64_t line, const char *what) {
    L->s->st.n_empty++;
    ds_warn(&L->w, "%s:%lld: empty %s (sample skipped)", L->s->path, (long long)line, what);
    return 0;
}

static const char *str_field(json_t *o, const char *k, int *present) {
    json_t *v = json_object_get(o, k);
    *present = v != NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

// One JSON object -> record.
static int add_json(ld *L, int64_t line, json_t *o) {
    if (!json_is_object(o)) return malformed(L, line, "expected a JSON object, got %s",
                                             json_is_array(o) ? "an array" : "a scalar");
    const ds_load_opts *op = L->o;
    json_t *status = json_object_get(o, "status");
    if (op->status_keep && status) {
        if (!json_is_string(status) || strcmp(json_string_value(status), op->status_keep)) {
            L->s->st.n_filtered++;
            return 0;
        }
    }
    int has;
    json_t *msgs = json_object_get(o, "messages");
    json_t *conv = msgs ? NULL : json_object_get(o, "conversations");
    if (msgs || conv) {
        json_t *arr = msgs ? msgs : conv;
        const char *fname = msgs ? "messages" : "conversations";
        if (!json_is_array(arr) || json_array_size(arr) == 0)
            return malformed(L, line, "field '%s': expected a non-empty array", fname);
        json_t *out = json_array();
        int n_asst = 0, empty = 0;
        if (op->system_prompt) {
            json_t *r0 = json_object_get(json_array_get(arr, 0), msgs ? "role" : "from");
            if (!json_is_string(r0) || strcmp(json_string_value(r0), "system"))
                json_array_append_new(out, msg("system", op->system_prompt));
        }
        size_t i;
        json_t *m;
        json_array_foreach(arr, i, m) {
            const char *role = json_string_value(json_object_get(m, msgs ? "role" : "from"));
            json_t *content = json_object_get(m, msgs ? "content" : "value");
            if (!json_is_object(m) || !role || !json_is_string(content)) {
                json_decref(out);
                return malformed(L, line, "field '%s'[%zu]: expected {\"%s\": string, \"%s\": string}", fname, i,
                                 msgs ? "role" : "from", msgs ? "content" : "value");
            }
            if (conv) {   // ShareGPT role names
                if (!strcmp(role, "human")) role = "user";
                else if (!strcmp(role, "gpt")) role = "assistant";
            }
            if (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant") && strcmp(role, "tool")) {
                json_decref(out);
                return malformed(L, line, "field '%s'[%zu]: unknown role '%s'", fname, i, role);
            }
            int is_a = !strcmp(role, "assistant");
            n_asst += is_a;
            if (is_a && only_space(json_string_value(content), json_string_length(content))) empty = 1;
            if (msgs) {
                json_t *c = json_deep_copy(m);   // keep extra fields (tool_calls, ...) for the template
                json_array_append_new(out, c);
            } else {
                json_array_append_new(out, msg(role, json_string_value(content)));
            }
        }
        if (empty || n_asst == 0) {
            json_decref(out);
            return empty_sample(L, line, n_asst ? "assistant message" : "conversation (no assistant message)");
        }
        return push(L, (ds_record){DS_REC_CHAT, NULL, 0, out, line});
    }
    const char *prompt = str_field(o, "prompt", &has), *completion;
    if (has) {
        int hc;
        completion = str_field(o, "completion", &hc);
        if (!prompt || !completion)
            return malformed(L, line, "fields 'prompt' and 'completion' must both be strings");
        if (only_space(completion, strlen(completion)) || only_space(prompt, strlen(prompt)))
            return empty_sample(L, line, "prompt or completion");
        return push(L, (ds_record){DS_REC_CHAT, NULL, 0, chat2(op, prompt, completion), line});
    }
    const char *instr = str_field(o, "instruction", &has);
    if (has) {
        int hi, ho;
        const char *input = str_field(o, "input", &hi), *output = str_field(o, "output", &ho);
        if (!instr || !output || (hi && !input && !json_is_null(json_object_get(o, "input"))))
            return malformed(L, line, "fields 'instruction', 'output' (and 'input' when present) must be strings");
        if (only_space(output, strlen(output)) || only_space(instr, strlen(instr)))
            return empty_sample(L, line, "instruction or output");
        char *user = NULL;
        if (input && !only_space(input, strlen(input))) {
            size_t a = strlen(instr), b = strlen(input);
            user = malloc(a + b + 3);
            if (!user) return err_set(SLLM_ERR_NOMEM, "%s: out of memory", L->s->path);
            memcpy(user, instr, a);
            memcpy(user + a, "\n\n", 2);
            memcpy(user + a + 2, input, b + 1);
        }
        json_t *c = chat2(op, user ? user : instr, output);
        free(user);
        return push(L, (ds_record){DS_REC_CHAT, NULL, 0, c, line});
    }
    json_t *text = json_object_get(o, "text");
    if (text) {
        if (!json_is_string(text)) return malformed(L, line, "field 'text': expected a string");
        const char *t = json_string_value(text);
        size_t n = json_string_length(text);
        if (only_space(t, n)) return empty_sample(L, line, "text");
        char *c = malloc(n + 1);
        if (!c) return err_set(SLLM_ERR_NOMEM, "%s: out of memory", L->s->path);
        memcpy(c, t, n + 1);
        return push(L, (ds_record){DS_REC_TEXT, c, n, NULL, line});
    }
    return malformed(L, line, "no known fields (expected text, messages, conversations, prompt/completion "
                              "or instruction/output)");
}

static int load_jsonl(ld *L, const char *buf, size_t len) {
    size_t i = 0;
    int64_t line = 1;
    while (i < len) {
        size_t e = i;
        while (e < len && buf[e] != '\n') e++;
        if (!only_space(buf + i, e - i)) {
            json_error_t err;
            json_t *o = json_loadb(buf + i, e - i, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
            int rc = o ? add_json(L, line, o) : malformed(L, line, "invalid JSON: %s (column %d)", err.text, err.column);
            json_decref(o);
            if (rc) return rc;
        }
        i = e + 1;
        line++;
    }
    return 0;
}

static size_t skip_ws(const char *b, size_t i, size_t len, int64_t *line) {
    while (i < len && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r')) *line += b[i++] == '\n';
    return i;
}

// A JSON array of records. Elements are parsed one at a time so each gets its own line number; a
// syntax error ends the file (nothing after it can be trusted), an element of the wrong shape is skippable.
static int load_json(ld *L, const char *buf, size_t len) {
    int64_t line = 1;
    size_t i = skip_ws(buf, 0, len, &line);
    if (i < len && buf[i] != '[') {   // a .json file holding JSON lines
        return load_jsonl(L, buf, len);
    }
    if (i >= len) return err_set(SLLM_ERR_FORMAT, "%s: empty file (expected a JSON array of records)", L->s->path);
    i = skip_ws(buf, i + 1, len, &line);
    if (i < len && buf[i] == ']') return 0;
    for (;;) {
        json_error_t err;
        json_t *o = json_loadb(buf + i, len - i, JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
        if (!o)
            return err_set(SLLM_ERR_FORMAT, "%s:%lld: invalid JSON: %s", L->s->path,
                           (long long)(line + err.line - 1), err.text);
        int rc = add_json(L, line, o);
        json_decref(o);
        if (rc) return rc;
        line += count_lines(buf + i, (size_t)err.position);
        i = skip_ws(buf, i + (size_t)err.position, len, &line);
        if (i < len && buf[i] == ',') { i = skip_ws(buf, i + 1, len, &line); continue; }
        if (i < len && buf[i] == ']') break;
        return err_set(SLLM_ERR_FORMAT, "%s:%lld: expected ',' or ']' in the array of records", L->s->path,
                       (long long)line);
    }
    i = skip_ws(buf, i + 1, len, &line);
    if (i < len) return err_set(SLLM_ERR_FORMAT, "%s:%lld: text after the closing ']'", L->s->path, (long long)line);
    return 0;
}

// ---- CSV (RFC 4180). Hand-written: no CSV library among the project's dependencies, and the format is small.
typedef struct { char **f; size_t *len; int n, cap; char *buf; size_t bl, bcap; } csv_row;

static int csv_put(csv_row *r, char c) {
    if (r->bl + 1 >= r->bcap) {
        size_t cap = r->bcap ? 2 * r->bcap : 256;
        char *p = realloc(r->buf, cap);
        if (!p) return -1;
        r->buf = p;
        r->bcap = cap;
    }
    r->buf[r->bl++] = c;
    return 0;
}

static int csv_end_field(csv_row *r, size_t start) {
    if (csv_put(r, 0)) return -1;
    if (r->n == r->cap) {
        int cap = r->cap ? 2 * r->cap : 8;
        char **f = realloc(r->f, (size_t)cap * sizeof *f);
        if (!f) return -1;
        r->f = f;
        size_t *l = realloc(r->len, (size_t)cap * sizeof *l);
        if (!l) return -1;
        r->len = l;
        r->cap = cap;
    }
    r->f[r->n] = (char *)(uintptr_t)start;   // offsets until the row is complete (buf may move)
    r->len[r->n++] = r->bl - 1 - start;
    return 0;
}

// Parses one record from buf[*pos]. Returns 1 with a row, 0 at end of input, -1 on a malformed record
// (why set; *pos moved past the bad physical line), -2 out of memory.
static int csv_next(const char *buf, size_t len, size_t *pos, int64_t *line, csv_row *r, const char **why) {
    size_t i = *pos;
    r->n = 0;
    r->bl = 0;
    if (i >= len) return 0;
    size_t start = 0;
    for (;;) {
        if (i < len && buf[i] == '"') {
            int64_t qline = *line;
            i++;
            for (;;) {
                if (i >= len) {
                    *why = "unterminated quoted field";
                    *line = qline;
                    *pos = len;
                    return -1;
                }
                if (buf[i] == '"') {
                    if (i + 1 < len && buf[i + 1] == '"') { if (csv_put(r, '"')) return -2; i += 2; continue; }
                    i++;
                    break;
                }
                if (buf[i] == '\n') (*line)++;
                if (csv_put(r, buf[i++])) return -2;
            }
            if (i < len && buf[i] != ',' && buf[i] != '\n' && buf[i] != '\r') {
                *why = "unexpected character after a closing quote";
                while (i < len && buf[i] != '\n') i++;
                *pos = i < len ? i + 1 : len;
                (*line)++;
                return -1;
            }
        } else {
            while (i < len && buf[i] != ',' && buf[i] != '\n' && !(buf[i] == '\r' && i + 1 < len && buf[i + 1] == '\n')) {
                if (buf[i] == '"') {
                    *why = "quote inside an unquoted field";
                    while (i < len && buf[i] != '\n') i++;
                    *pos = i < len ? i + 1 : len;
                    (*line)++;
                    return -1;
                }
                if (csv_put(r, buf[i++])) return -2;
            }
        }
        if (csv_end_field(r, start)) return -2;
        start = r->bl;
        if (i < len && buf[i] == ',') { i++; continue; }
        if (i < len && buf[i] == '\r') i++;
        if (i < len && buf[i] == '\n') i++;
        (*line)++;
        break;
    }
    for (int k = 0; k < r->n; k++) r->f[k] = r->buf + (uintptr_t)r->f[k];
    *pos = i;
    return 1;
}

static int find_col(const csv_row *h, const char *want, const char *const *names) {
    for (int k = 0; k < h->n; k++) {
        if (want && !strcasecmp(h->f[k], want)) return k;
        for (int j = 0; !want && names[j]; j++)
            if (!strcasecmp(h->f[k], names[j])) return k;
    }
    return -1;
}

static int load_csv(ld *L, const char *buf, size_t len) {
    csv_row h = {0}, r = {0};
    size_t pos = 0;
    int64_t line = 1, rec_line;
    const char *why = NULL;
    int rc = 0, got = csv_next(buf, len, &pos, &line, &h, &why);
    if (got != 1) {
        rc = got == -2 ? err_set(SLLM_ERR_NOMEM, "%s: out of memory", L->s->path)
                       : err_set(SLLM_ERR_FORMAT, "%s:1: %s", L->s->path, got == 0 ? "empty file (expected a header row)" : why);
        goto out;
    }
    static const char *const qn[] = {"q", "question", "prompt", "instruction", "input", NULL};
    static const char *const an[] = {"a", "answer", "response", "output", "completion", NULL};
    int qc = find_col(&h, L->o->csv_prompt_col, qn), ac = find_col(&h, L->o->csv_response_col, an);
    if ((L->o->csv_prompt_col && qc < 0) || (L->o->csv_response_col && ac < 0)) {
        rc = err_set(SLLM_ERR_ARG, "%s:1: header has no column '%s'", L->s->path,
                     qc < 0 ? L->o->csv_prompt_col : L->o->csv_response_col);
        goto out;
    }
    if (qc < 0 || ac < 0) {
        if (h.n < 2) {
            rc = err_set(SLLM_ERR_FORMAT, "%s:1: need at least two columns (question, answer)", L->s->path);
            goto out;
        }
        qc = 0;
        ac = 1;
    }
    for (;;) {
        rec_line = line;
        got = csv_next(buf, len, &pos, &line, &r, &why);
        if (got == 0) break;
        if (got == -2) { rc = err_set(SLLM_ERR_NOMEM, "%s: out of memory", L->s->path); goto out; }
        if (got == -1) {
            if ((rc = malformed(L, rec_line, "%s", why))) goto out;
            continue;
        }
        if (r.n == 1 && r.len[0] == 0) continue;   // blank line
        if (r.n != h.n) {
            if ((rc = malformed(L, rec_line, "expected %d fields as in the header, got %d", h.n, r.n))) goto out;
            continue;
        }
        if (!valid_utf8(r.buf, r.bl)) {
            if ((rc = malformed(L, rec_line, "invalid UTF-8"))) goto out;
            continue;
        }
        if (only_space(r.f[qc], r.len[qc]) || only_space(r.f[ac], r.len[ac])) {
            empty_sample(L, rec_line, "question or answer");
            continue;
        }
        if ((rc = push(L, (ds_record){DS_REC_CHAT, NULL, 0, chat2(L->o, r.f[qc], r.f[ac]), rec_line}))) goto out;
    }
out:
    free(h.f); free(h.len); free(h.buf);
    free(r.f); free(r.len); free(r.buf);
    return rc;
}

static ds_format format_of(const char *path) {
    const char *dot = strrchr(path, '.');
    if (!dot) return DS_FMT_TXT;
    if (!strcasecmp(dot, ".jsonl")) return DS_FMT_JSONL;
    if (!strcasecmp(dot, ".json")) return DS_FMT_JSON;
    if (!strcasecmp(dot, ".csv")) return DS_FMT_CSV;
    return DS_FMT_TXT;
}

int ds_load(const char *path, const ds_load_opts *opts, ds_source **out) {
    *out = NULL;
    ds_load_opts def = {0};
    if (!opts) opts = &def;
    char *buf;
    size_t len;
    int rc = fileio_read_all(path, &buf, &len);
    if (rc) return rc;
    ds_source *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        free(buf);
        return err_set(SLLM_ERR_NOMEM, "%s: out of memory", path);
    }
    ld L = {s, opts, {opts->warn, opts->warn_ctx, opts->max_warnings, 0}};
    const char *b = buf;
    if (len >= 3 && !memcmp(b, "\xEF\xBB\xBF", 3)) b += 3, len -= 3;   // UTF-8 BOM
    ds_format f = opts->format == DS_FMT_AUTO ? format_of(path) : opts->format;
    switch (f) {
    case DS_FMT_JSONL: rc = load_jsonl(&L, b, len); break;
    case DS_FMT_JSON: rc = load_json(&L, b, len); break;
    case DS_FMT_CSV: rc = load_csv(&L, b, len); break;
    default: rc = load_txt(&L, b, len); break;
    }
    free(buf);
    if (rc) { ds_source_free(s); return rc; }
    *out = s;
    return SLLM_OK;
}

void ds_source_free(ds_source *s) {
    if (!s) return;
    for (int64_t i = 0; i < s->n; i++) { free(s->r[i].text); json_decref(s->r[i].messages); }
    free(s->r);
    free(s->path);
    free(s);
}
int64_t ds_source_count(const ds_source *s) { return s->n; }
const ds_record *ds_source_get(const ds_source *s, int64_t i) { return i >= 0 && i < s->n ? &s->r[i] : NULL; }
const ds_load_stats *ds_source_stats(const ds_source *s) { return &s->st; }
const char *ds_source_path(const ds_source *s) { return s->path; }
