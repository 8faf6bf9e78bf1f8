// Normalizers and pre-tokenizers: the steps between raw text and the BPE/SPM model.
// Regex splits run through PCRE2 in UTF + UCP mode, whose \s, \p{L}, \p{N} and (?i:...) match
// the Oniguruma semantics Hugging Face tokenizers use for the patterns we ship/load.
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>
#include "base/error.h"
#include "text/tokenizer_impl.h"

// ---- presets for GGUF tokenizer.ggml.pre (the patterns of the matching HF tokenizer.json) ----
static const char RE_GPT2[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
static const char RE_LLAMA3[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char RE_QWEN2[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
// DeepSeek LLM: a sequence of isolated splits (letters of cased scripts, ASCII/CJK punctuation,
// trailing whitespace, CJK/Hangul runs, digits), as in its tokenizer.json.
static const char *const RE_DEEPSEEK_LLM[] = {
    "[\\r\\n]",
    "\\s?[A-Za-z\u00b5\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u01ba\u01bc-\u01bf\u01c4-\u0293\u0295-\u02af"
    "\u0370-\u0373\u0376\u0377\u037b-\u037d\u037f\u0386\u0388-\u038a\u038c\u038e-\u03a1\u03a3-\u03f5"
    "\u03f7-\u0481\u048a-\u052f\u0531-\u0556\u10a0-\u10c5\u13a0-\u13f5\u13f8-\u13fd\u1c90-\u1cba"
    "\u1cbd-\u1cbf\u1d00-\u1d2b\u1d6b-\u1d77\u1d79-\u1d9a\u1e00-\u1f15\u1f18-\u1f1d\u1f20-\u1f45"
    "\u1f48-\u1f4d\u1f50-\u1f57\u1f59\u1f5b\u1f5d\u1f5f-\u1f7d\u1f80-\u1fb4\u1fb6-\u1fbc\u1fbe"
    "\u1fc2-\u1fc4\u1fc6-\u1fcc\u1fd0-\u1fd3\u1fd6-\u1fdb\u1fe0-\u1fec\u1ff2-\u1ff4\u1ff6-\u1ffc"
    "\u2102\u2107\u210a-\u2113\u2115\u2119-\u211d\u2124\u2126\u2128\u212a-\u212d\u212f-\u2134\u2139"
    "\u213c-\u213f\u2145-\u2149\u214e\u2183\u2184\u2c00-\u2c7b\u2c7e-\u2ce4\u2ceb-\u2cee\u2cf2\u2cf3"
    "\ua640-\ua66d\ua680-\ua69b\ua722-\ua76f\ua771-\ua787\ua78b-\ua78e\uab70-\uabbf\ufb00-\ufb06"
    "\ufb13-\ufb17\uff21-\uff3a\uff41-\uff5a\U00010400-\U0001044f\U000104b0-\U000104d3"
    "\U000104d8-\U000104fb\U00010c80-\U00010cb2\U00010cc0-\U00010cf2\U000118a0-\U000118df"
    "\U0001e900-\U0001e943]+",
    "\\s?[!-/:-~\uff01-\uff0f\uff1a-\uff5e\u2018-\u201f\u3000-\u3002]+",
    "\\s+$",
    "[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+",
    "\\p{N}+",
};
static const char *const RE_FALCON[] = {
    "[\\p{P}\\$\\+<=>\\^~\\|`]+",
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
    "[0-9][0-9][0-9]",
};
static const char *const RE_STARCODER[] = {
    "\\p{N}",
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
};

const char *tok_gpt2_pattern(void) { return RE_GPT2; }

tok_pre_kind tok_pre_from_name(const char *name) {
    static const struct { const char *n; tok_pre_kind k; } tab[] = {
        {"default", TOK_PRE_DEFAULT}, {"gpt-2", TOK_PRE_GPT2}, {"gpt2", TOK_PRE_GPT2},
        {"llama-bpe", TOK_PRE_LLAMA3}, {"llama3", TOK_PRE_LLAMA3}, {"llama-v3", TOK_PRE_LLAMA3},
        {"smaug-bpe", TOK_PRE_LLAMA3}, {"dbrx", TOK_PRE_LLAMA3},
        {"qwen2", TOK_PRE_QWEN2}, {"stablelm2", TOK_PRE_QWEN2},
        {"deepseek-llm", TOK_PRE_DEEPSEEK_LLM}, {"falcon", TOK_PRE_FALCON},
        {"starcoder", TOK_PRE_STARCODER}, {"refact", TOK_PRE_STARCODER}, {"smollm", TOK_PRE_STARCODER},
        {"command-r", TOK_PRE_STARCODER}, {"mpt", TOK_PRE_GPT2}, {"olmo", TOK_PRE_GPT2},
    };
    if (!name) return TOK_PRE_DEFAULT;
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (!strcmp(tab[i].n, name)) return tab[i].k;
    return TOK_PRE_CUSTOM;   // unknown name
}

static int add_split(tok_desc *d, const char *pattern) {
    tok_pre_step *p = realloc(d->pre, (size_t)(d->n_pre + 1) * sizeof *p);
    if (!p) return err_set(SLLM_ERR_NOMEM, "tokenizer: out of memory");
    d->pre = p;
    memset(&p[d->n_pre], 0, sizeof p[0]);
    p[d->n_pre].kind = TOK_STEP_SPLIT;
    p[d->n_pre].behavior = TOK_SPLIT_ISOLATED;
    if (!(p[d->n_pre].pattern = strdup(pattern))) return err_set(SLLM_ERR_NOMEM, "tokenizer: out of memory");
    d->n_pre++;
    return SLLM_OK;
}

// Fills d->pre for a byte-level BPE preset: regex splits on raw text, then byte-level mapping.
int tok_pre_preset(tok_pre_kind k, tok_desc *d) {
    const char *const *list = NULL;
    size_t n = 0;
    const char *one = NULL;
    switch (k) {
    case TOK_PRE_DEFAULT: case TOK_PRE_GPT2: one = RE_GPT2; break;
    case TOK_PRE_LLAMA3: one = RE_LLAMA3; break;
    case TOK_PRE_QWEN2: one = RE_QWEN2; break;
    case TOK_PRE_DEEPSEEK_LLM: list = RE_DEEPSEEK_LLM; n = sizeof RE_DEEPSEEK_LLM / sizeof *list; break;
    case TOK_PRE_FALCON: list = RE_FALCON; n = sizeof RE_FALCON / sizeof *list; break;
    case TOK_PRE_STARCODER: list = RE_STARCODER; n = sizeof RE_STARCODER / sizeof *list; break;
    default: return err_set(SLLM_ERR_UNSUPPORTED, "tokenizer: no pre-tokenizer preset %d", (int)k);
    }
    int rc;
    if (one && (rc = add_split(d, one))) return rc;
    for (size_t i = 0; i < n; i++)
        if ((rc = add_split(d, list[i]))) return rc;
    tok_pre_step *p = realloc(d->pre, (size_t)(d->n_pre + 1) * sizeof *p);
    if (!p) return err_set(SLLM_ERR_NOMEM, "tokenizer: out of memory");
    d->pre = p;
    memset(&p[d->n_pre], 0, sizeof p[0]);
    p[d->n_pre].kind = TOK_STEP_BYTELEVEL;
    d->n_pre++;
    return SLLM_OK;
}

int tok_regex_compile(const char *pattern, const char *what, pcre2_code **out) {
    int ecode;
    PCRE2_SIZE eoff;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP,
                                   &ecode, &eoff, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ecode, msg, sizeof msg);
        return err_set(SLLM_ERR_FORMAT, "%s: regex error at offset %zu: %s", what, (size_t)eoff,
                       (const char *)msg);
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);   // best effort: falls back to the interpreter
    *out = re;
    return SLLM_OK;
}

// ---- byte-level (GPT-2) byte <-> unicode table ----
static uint32_t byte_cp(int b) {
    // Printable Latin-1 bytes map to themselves; the other 68 take code points 256.. in order.
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) return (uint32_t)b;
    int k = 0;
    for (int c = 0; c < b; c++)
        if (!((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || (c >= 174 && c <= 255))) k++;
    return 256u + (uint32_t)k;
}

void tok_bytelevel_table(char enc[256][3]) {
    for (int b = 0; b < 256; b++) {
        uint32_t cp = byte_cp(b);
        memset(enc[b], 0, 3);
        if (cp < 0x80) enc[b][0] = (char)cp;
        else { enc[b][0] = (char)(0xC0 | (cp >> 6)); enc[b][1] = (char)(0x80 | (cp & 0x3F)); }
    }
}

void tok_bytelevel_reverse(int16_t rev[324]) {
    for (int i = 0; i < 324; i++) rev[i] = -1;
    for (int b = 0; b < 256; b++) rev[byte_cp(b)] = (int16_t)b;
}

// ---- normalizers ----
static int replace_all(const char *s, size_t n, const char *a, const char *b, tok_buf *o) {
    size_t al = strlen(a), bl = strlen(b), i = 0;
    if (!al) return tok_buf_put(o, s, n);
    while (i < n) {
        if (i + al <= n && !memcmp(s + i, a, al)) {
            if (tok_buf_put(o, b, bl)) return SLLM_ERR_NOMEM;
            i += al;
        } else {
            if (tok_buf_put(o, s + i, 1)) return SLLM_ERR_NOMEM;
            i++;
        }
    }
    return SLLM_OK;
}

static int replace_regex(pcre2_code *re, const char *s, size_t n, const char *b, tok_buf *o) {
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    if (!md) return err_set(SLLM_ERR_NOMEM, "tokenizer: out of memory");
    size_t pos = 0, last = 0;
    int rc = SLLM_OK;
    while (pos <= n) {
        int m = pcre2_match(re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, md, NULL);
        if (m < 0) break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        if (tok_buf_put(o, s + last, ov[0] - last) || tok_buf_put(o, b, strlen(b))) { rc = SLLM_ERR_NOMEM; break; }
        last = ov[1];
        if (ov[1] == ov[0]) {   // empty match: step over one character
            if (ov[1] >= n) break;
            size_t bad;
            int l = tok_utf8_next((const uint8_t *)s + ov[1], n - ov[1], &bad);
            pos = ov[1] + (size_t)(l > 0 ? l : 1);
        } else pos = ov[1];
    }
    pcre2_match_data_free(md);
    if (!rc && tok_buf_put(o, s + last, n - last)) rc = SLLM_ERR_NOMEM;
    return rc;
}

static bool is_ws(int32_t c) {
    if (c == ' ' || (c >= 9 && c <= 13) || c == 0x85 || c == 0xA0 || c == 0x1680 || c == 0x2028 ||
        c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000 || (c >= 0x2000 && c <= 0x200A)) return true;
    return false;
}

int tok_normalize(const tok *t, const char *s, size_t n, char **out, size_t *out_len) {
    char *cur = malloc(n + 1);
    if (!cur) return err_set(SLLM_ERR_NOMEM, "tokenizer: out of memory");
    memcpy(cur, s, n);
    cur[n] = 0;
    size_t len = n;
    for (int i = 0; i < t->n_norm; i++) {
        const tok_norm_c *st = &t->norm[i];
        tok_buf o = {0};
        int rc = SLLM_OK;
        switch (st->s.kind) {
        case TOK_NORM_NFC: case TOK_NORM_NFKC: case TOK_NORM_NFD: case TOK_NORM_NFKD: {
            int opt = UTF8PROC_STABLE;
            if (st->s.kind == TOK_NORM_NFC || st->s.kind == TOK_NORM_NFKC) opt |= UTF8PROC_COMPOSE;
            else opt |= UTF8PROC_DECOMPOSE;
            if (st->s.kind == TOK_NORM_NFKC || st->s.kind == TOK_NORM_NFKD) opt |= UTF8PROC_COMPAT;
            utf8proc_uint8_t *r = NULL;
            utf8proc_ssize_t rl = utf8proc_map((const utf8proc_uint8_t *)cur, (utf8proc_ssize_t)len, &r,
                                               (utf8proc_option_t)opt);
            if (rl < 0) { free(cur); return err_set(SLLM_ERR_TEXT, "tokenizer: normalization failed: %s",
                                                     utf8proc_errmsg(rl)); }
            o.p = (char *)r; o.n = (size_t)rl; o.cap = (size_t)rl + 1;
            break;
        }
        case TOK_NORM_REPLACE: rc = replace_all(cur, len, st->s.a, st->s.b, &o); break;
        case TOK_NORM_REPLACE_REGEX: rc = replace_regex(st->re, cur, len, st->s.b, &o); break;
        case TOK_NORM_PREPEND:
            rc = tok_buf_put(&o, st->s.a, strlen(st->s.a));
            if (!rc) rc = tok_buf_put(&o, cur, len);
            break;
        case TOK_NORM_LOWERCASE: {
            size_t p = 0;
            while (p < len && !rc) {
                utf8proc_int32_t c;
                utf8proc_ssize_t l = utf8proc_iterate((const utf8proc_uint8_t *)cur + p, (utf8proc_ssize_t)(len - p), &c);
                if (l <= 0) { rc = tok_buf_put(&o, cur + p, 1); p++; continue; }
                utf8proc_uint8_t enc[4];
                utf8proc_ssize_t el = utf8proc_encode_char(utf8proc_tolower(c), enc);
                rc = tok_buf_put(&o, enc, (size_t)el);
                p += (size_t)l;
            }
            break;
        }
        case TOK_NORM_STRIP: {
            size_t b = 0, e = len;
            while (st->s.left && b < e) {
                utf8proc_int32_t c;
                utf8proc_ssize_t l = utf8proc_iterate((const utf8proc_uint8_t *)cur + b, (utf8proc_ssize_t)(e - b), &c);
                if (l <= 0 || !is_ws(c)) break;
                b += (size_t)l;
            }
            while (st->s.right && e > b) {
                size_t q = e - 1;
                while (q > b && ((uint8_t)cur[q] & 0xC0) == 0x80) q--;
                utf8proc_int32_t c;
                utf8proc_ssize_t l = utf8proc_iterate((const utf8proc_uint8_t *)cur + q, (utf8proc_ssize_t)(e - q), &c);
                if (l <= 0 || !is_ws(c)) break;
                e = q;
            }
            rc = tok_buf_put(&o, cur + b, e - b);
            break;
        }
        }
        free(cur);
        if (rc) { tok_buf_free(&o); return rc == SLLM_ERR_NOMEM ? err_set(rc, "tokenizer: out of memory") : rc; }
        if (tok_buf_put(&o, "", 1)) { tok_buf_free(&o); return err_set(SLLM_ERR_NOMEM, "tokenizer: out of memory"); }
        cur = o.p;
        len = o.n - 1;
    }
    *out = cur;
    *out_len = len;
    return SLLM_OK;
}

// ---- pre-tokenizer steps ----
// Segments of one piece: [start, end) and whether it was a pattern match.
typedef struct { size_t b, e; bool m; } seg;

static int split_piece(pcre2_code *re, pcre2_match_data *md, const char *s, size_t n,
                       tok_split_behavior beh, bool invert, tok_pieces *out) {
    seg *sg = NULL;
    size_t ns = 0, cap = 0, pos = 0, last = 0;
#define PUSH_SEG(B, E, M) do { if ((E) > (B)) { if (ns == cap) { cap = cap ? cap * 2 : 16; \
        seg *q_ = realloc(sg, cap * sizeof *sg); if (!q_) { free(sg); return err_set(SLLM_ERR_NOMEM, "tokenizer: out of memory"); } \
        sg = q_; } sg[ns].b = (B); sg[ns].e = (E); sg[ns].m = (M) != invert; ns++; } } while (0)
    while (pos < n) {
        int m = pcre2_match(re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, md, NULL);
        if (m < 0) break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        PUSH_SEG(last, ov[0], false);
        PUSH_SEG(ov[0], ov[1], true);
        last = ov[1];
        if (ov[1] == ov[0]) {
            size_t bad;
            int l = tok_utf8_next((const uint8_t *)s + ov[1], n - ov[1], &bad);
            pos = ov[1] + (size_t)(l > 0 ? l : 1);
        } else pos = ov[1];
    }
    PUSH_SEG(last, n, false);
#undef PUSH_SEG
    int rc = SLLM_OK;
    // Build the output pieces according to the delimiter behavior (HF SplitDelimiterBehavior).
    size_t i = 0;
    while (i < ns && !rc) {
        size_t b = sg[i].b, e = sg[i].e;
        switch (beh) {
        case TOK_SPLIT_ISOLATED: break;
        case TOK_SPLIT_REMOVED: if (sg[i].m) { i++; continue; } break;
        case TOK_SPLIT_MERGED_PREV:
            if (!sg[i].m && i + 1 < ns && sg[i + 1].m) { e = sg[i + 1].e; i++; }
            break;
        case TOK_SPLIT_MERGED_NEXT:
            if (sg[i].m && i + 1 < ns && !sg[i + 1].m) { e = sg[i + 1].e; i++; }
            break;
        case TOK_SPLIT_CONTIGUOUS:
            while (sg[i].m && i + 1 < ns && sg[i + 1].m) { e = sg[i + 1].e; i++; }
            break;
        }
        rc = tok_pieces_add(out, s + b, e - b);
        i++;
    }
    free(sg);
    return rc;
}

static int apply_step(const tok *t, const tok_pre_c *st, const tok_pieces *in, int section_index, tok_pieces *out,
                      pcre2_match_data *md) {
    int rc = SLLM_OK;
    for (size_t i = 0; i < in->n && !rc; i++) {
        const char *s = in->buf.p + in->off[i];
        size_t n = in->len[i];
        switch (st->s.kind) {
        case TOK_STEP_SPLIT:
            rc = split_piece(st->re, md, s, n, st->s.behavior, st->s.invert, out);
            break;
        case TOK_STEP_BYTELEVEL: {
            const char (*enc)[3] = t->bl_enc;
            tok_buf pre = {0};
            if (st->s.add_prefix_space && (n == 0 || s[0] != ' ')) rc = tok_buf_put(&pre, " ", 1);
            if (!rc) rc = tok_buf_put(&pre, s, n);
            tok_pieces parts = {0};
            if (!rc) {
                if (st->s.use_regex && st->re) rc = split_piece(st->re, md, pre.p, pre.n, TOK_SPLIT_ISOLATED, false, &parts);
                else rc = tok_pieces_add(&parts, pre.p, pre.n);
            }
            for (size_t k = 0; k < parts.n && !rc; k++) {
                tok_buf m = {0};
                const uint8_t *q = (const uint8_t *)parts.buf.p + parts.off[k];
                for (size_t j = 0; j < parts.len[k] && !rc; j++)
                    rc = tok_buf_put(&m, enc[q[j]], enc[q[j]][1] ? 2 : 1);
                if (!rc) rc = tok_pieces_add(out, m.p ? m.p : "", m.n);
                tok_buf_free(&m);
            }
            tok_pieces_free(&parts);
            tok_buf_free(&pre);
            break;
        }
        case TOK_STEP_METASPACE: {
            const char *rep = st->s.replacement ? st->s.replacement : "\xe2\x96\x81";
            size_t rl = strlen(rep);
            tok_buf m = {0};
            bool first = section_index == 0 && i == 0;
            if (st->s.add_prefix_space && (st->s.prepend == TOK_PREPEND_ALWAYS ||
                                           (st->s.prepend == TOK_PREPEND_FIRST && first)) &&
                !(n >= rl && !memcmp(s, rep, rl)) && !(n > 0 && s[0] == ' '))
                rc = tok_buf_put(&m, rep, rl);
            if (!rc) rc = replace_all(s, n, " ", rep, &m);
            if (!rc) {
                if (!st->s.split) rc = tok_pieces_add(out, m.p ? m.p : "", m.n);
                else {   // split before every replacement char (MergedWithNext)
                    size_t b = 0;
                    for (size_t j = 1; j + rl <= m.n && !rc; j++)
                        if (!memcmp(m.p + j, rep, rl)) { rc = tok_pieces_add(out, m.p + b, j - b); b = j; }
                    if (!rc && m.n > b) rc = tok_pieces_add(out, m.p + b, m.n - b);
                }
            }
            tok_buf_free(&m);
            break;
        }
        }
    }
    return rc == SLLM_ERR_NOMEM ? err_set(rc, "tokenizer: out of memory") : rc;
}

int tok_pretokenize(const tok *t, const char *s, size_t n, int section_index, tok_pieces *out) {
    tok_pieces a = {0}, b = {0};
    int rc = tok_pieces_add(&a, s, n);
    pcre2_match_data *md = pcre2_match_data_create(64, NULL);
    if (!md) rc = err_set(SLLM_ERR_NOMEM, "tokenizer: out of memory");
    for (int i = 0; i < t->n_pre && !rc; i++) {
        rc = apply_step(t, &t->pre[i], &a, section_index, &b, md);
        tok_pieces tmp = a; a = b; b = tmp;
        tok_pieces_clear(&b);
    }
    for (size_t i = 0; i < a.n && !rc; i++)
        if (a.len[i]) rc = tok_pieces_add(out, a.buf.p + a.off[i], a.len[i]);
    if (md) pcre2_match_data_free(md);
    tok_pieces_free(&a);
    tok_pieces_free(&b);
    return rc;
}
