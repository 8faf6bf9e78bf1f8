// Hugging Face tokenizer.json (+ tokenizer_config.json) -> tok_desc.
// Supported: model BPE (merges as "a b" strings or [a, b] pairs, byte_fallback, ignore_merges),
// normalizers NFC/NFKC/NFD/NFKD/Lowercase/Replace/Prepend/Strip/Sequence, pre-tokenizers
// Split/ByteLevel/Metaspace/Digits/Punctuation/Sequence, decoders ByteLevel / Replace+ByteFallback+
// Fuse+Strip / Metaspace, post-processors TemplateProcessing/ByteLevel/Roberta/Sequence.
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "base/error.h"
#include "text/tokenizer_impl.h"

#define NOMEM() err_set(SLLM_ERR_NOMEM, "tokenizer: out of memory")

static const char *jstr(json_t *o, const char *k) {
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}
static bool jbool(json_t *o, const char *k, bool def) {
    json_t *v = json_object_get(o, k);
    return json_is_boolean(v) ? json_is_true(v) : def;
}

// PCRE2 pattern matching a literal string.
static char *escape_literal(const char *s) {
    size_t n = strlen(s);
    char *o = malloc(2 * n + 1), *p = o;
    if (!o) return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80 && !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == ' '))
            *p++ = '\\';
        *p++ = (char)c;
    }
    *p = 0;
    return o;
}

static tok_pre_step *new_pre(tok_desc *d) {
    tok_pre_step *p = realloc(d->pre, (size_t)(d->n_pre + 1) * sizeof *p);
    if (!p) return NULL;
    d->pre = p;
    memset(&p[d->n_pre], 0, sizeof *p);
    return &p[d->n_pre++];
}

static tok_norm_step *new_norm(tok_desc *d) {
    tok_norm_step *p = realloc(d->norm, (size_t)(d->n_norm + 1) * sizeof *p);
    if (!p) return NULL;
    d->norm = p;
    memset(&p[d->n_norm], 0, sizeof *p);
    return &p[d->n_norm++];
}

// pattern: {"String": "..."} or {"Regex": "..."} -> malloc'd PCRE2 pattern
static int get_pattern(const char *path, const char *where, json_t *o, char **out) {
    json_t *pat = json_object_get(o, "pattern");
    const char *s;
    if ((s = jstr(pat, "Regex"))) *out = strdup(s);
    else if ((s = jstr(pat, "String"))) *out = escape_literal(s);
    else return err_set(SLLM_ERR_FORMAT, "%s: %s: 'pattern' must be {\"String\"} or {\"Regex\"}", path, where);
    return *out ? SLLM_OK : NOMEM();
}

static int parse_normalizer(const char *path, json_t *n, tok_desc *d) {
    if (!n || json_is_null(n)) return SLLM_OK;
    const char *type = jstr(n, "type");
    if (!type) return err_set(SLLM_ERR_FORMAT, "%s: normalizer: missing 'type'", path);
    if (!strcmp(type, "Sequence")) {
        json_t *arr = json_object_get(n, "normalizers"), *x;
        size_t i;
        if (!json_is_array(arr)) return err_set(SLLM_ERR_FORMAT, "%s: normalizer Sequence: 'normalizers' must be an array", path);
        json_array_foreach(arr, i, x) { int rc = parse_normalizer(path, x, d); if (rc) return rc; }
        return SLLM_OK;
    }
    static const struct { const char *n; tok_norm_kind k; } simple[] = {
        {"NFC", TOK_NORM_NFC}, {"NFKC", TOK_NORM_NFKC}, {"NFD", TOK_NORM_NFD}, {"NFKD", TOK_NORM_NFKD},
        {"Lowercase", TOK_NORM_LOWERCASE},
    };
    for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++)
        if (!strcmp(type, simple[i].n)) {
            tok_norm_step *s = new_norm(d);
            if (!s) return NOMEM();
            s->kind = simple[i].k;
            return SLLM_OK;
        }
    tok_norm_step *s = NULL;
    if (!strcmp(type, "Replace")) {
        json_t *pat = json_object_get(n, "pattern");
        const char *content = jstr(n, "content"), *str = jstr(pat, "String"), *re = jstr(pat, "Regex");
        if (!content || (!str && !re)) return err_set(SLLM_ERR_FORMAT, "%s: normalizer Replace: needs 'pattern' and 'content'", path);
        if (!(s = new_norm(d))) return NOMEM();
        s->kind = str ? TOK_NORM_REPLACE : TOK_NORM_REPLACE_REGEX;
        if (!(s->a = strdup(str ? str : re)) || !(s->b = strdup(content))) return NOMEM();
        return SLLM_OK;
    }
    if (!strcmp(type, "Prepend")) {
        const char *p = jstr(n, "prepend");
        if (!p) return err_set(SLLM_ERR_FORMAT, "%s: normalizer Prepend: missing 'prepend'", path);
        if (!(s = new_norm(d))) return NOMEM();
        s->kind = TOK_NORM_PREPEND;
        return (s->a = strdup(p)) ? SLLM_OK : NOMEM();
    }
    if (!strcmp(type, "Strip")) {
        if (!(s = new_norm(d))) return NOMEM();
        s->kind = TOK_NORM_STRIP;
        s->left = jbool(n, "strip_left", true);
        s->right = jbool(n, "strip_right", true);
        return SLLM_OK;
    }
    return err_set(SLLM_ERR_UNSUPPORTED, "%s: normalizer type '%s' is not supported", path, type);
}

static int parse_pre(const char *path, json_t *p, tok_desc *d) {
    if (!p || json_is_null(p)) return SLLM_OK;
    const char *type = jstr(p, "type");
    if (!type) return err_set(SLLM_ERR_FORMAT, "%s: pre_tokenizer: missing 'type'", path);
    tok_pre_step *s;
    if (!strcmp(type, "Sequence")) {
        json_t *arr = json_object_get(p, "pretokenizers"), *x;
        size_t i;
        if (!json_is_array(arr)) return err_set(SLLM_ERR_FORMAT, "%s: pre_tokenizer Sequence: 'pretokenizers' must be an array", path);
        json_array_foreach(arr, i, x) { int rc = parse_pre(path, x, d); if (rc) return rc; }
        return SLLM_OK;
    }
    if (!strcmp(type, "ByteLevel")) {
        if (!(s = new_pre(d))) return NOMEM();
        s->kind = TOK_STEP_BYTELEVEL;
        s->add_prefix_space = jbool(p, "add_prefix_space", false);
        s->use_regex = jbool(p, "use_regex", true);
        return SLLM_OK;
    }
    if (!strcmp(type, "Split")) {
        static const struct { const char *n; tok_split_behavior b; } beh[] = {
            {"Isolated", TOK_SPLIT_ISOLATED}, {"Removed", TOK_SPLIT_REMOVED},
            {"MergedWithPrevious", TOK_SPLIT_MERGED_PREV}, {"MergedWithNext", TOK_SPLIT_MERGED_NEXT},
            {"Contiguous", TOK_SPLIT_CONTIGUOUS},
        };
        const char *b = jstr(p, "behavior");
        int bi = -1;
        for (size_t i = 0; b && i < sizeof beh / sizeof beh[0]; i++) if (!strcmp(b, beh[i].n)) bi = (int)i;
        if (bi < 0) return err_set(SLLM_ERR_FORMAT, "%s: pre_tokenizer Split: bad 'behavior' '%s'", path, b ? b : "(missing)");
        if (!(s = new_pre(d))) return NOMEM();
        s->kind = TOK_STEP_SPLIT;
        s->behavior = beh[bi].b;
        s->invert = jbool(p, "invert", false);
        return get_pattern(path, "pre_tokenizer Split", p, &s->pattern);
    }
    if (!strcmp(type, "Digits")) {
        if (!(s = new_pre(d))) return NOMEM();
        s->kind = TOK_STEP_SPLIT;
        s->behavior = TOK_SPLIT_ISOLATED;
        s->pattern = strdup(jbool(p, "individual_digits", false) ? "\\p{N}" : "\\p{N}+");
        return s->pattern ? SLLM_OK : NOMEM();
    }
    if (!strcmp(type, "Punctuation")) {
        const char *b = jstr(p, "behavior");
        if (!(s = new_pre(d))) return NOMEM();
        s->kind = TOK_STEP_SPLIT;
        s->behavior = b && !strcmp(b, "Contiguous") ? TOK_SPLIT_CONTIGUOUS
                    : b && !strcmp(b, "Removed") ? TOK_SPLIT_REMOVED : TOK_SPLIT_ISOLATED;
        s->pattern = strdup("[\\p{P}!-/:-@\\[-`{-~]");
        return s->pattern ? SLLM_OK : NOMEM();
    }
    if (!strcmp(type, "Metaspace")) {
        if (!(s = new_pre(d))) return NOMEM();
        s->kind = TOK_STEP_METASPACE;
        const char *r = jstr(p, "replacement");
        s->replacement = strdup(r ? r : "\xe2\x96\x81");
        if (!s->replacement) return NOMEM();
        const char *sch = jstr(p, "prepend_scheme");
        s->prepend = !sch ? TOK_PREPEND_ALWAYS : !strcmp(sch, "first") ? TOK_PREPEND_FIRST
                   : !strcmp(sch, "never") ? TOK_PREPEND_NEVER : TOK_PREPEND_ALWAYS;
        s->add_prefix_space = jbool(p, "add_prefix_space", s->prepend != TOK_PREPEND_NEVER);
        s->split = jbool(p, "split", true);
        return SLLM_OK;
    }
    return err_set(SLLM_ERR_UNSUPPORTED, "%s: pre_tokenizer type '%s' is not supported", path, type);
}

static int parse_decoder(const char *path, json_t *dec, tok_desc *d) {
    if (!dec || json_is_null(dec)) return SLLM_OK;
    const char *type = jstr(dec, "type");
    if (!type) return err_set(SLLM_ERR_FORMAT, "%s: decoder: missing 'type'", path);
    if (!strcmp(type, "Sequence")) {
        json_t *arr = json_object_get(dec, "decoders"), *x;
        size_t i;
        if (!json_is_array(arr)) return err_set(SLLM_ERR_FORMAT, "%s: decoder Sequence: 'decoders' must be an array", path);
        json_array_foreach(arr, i, x) { int rc = parse_decoder(path, x, d); if (rc) return rc; }
        return SLLM_OK;
    }
    if (!strcmp(type, "ByteLevel")) { d->decoder = TOK_DEC_BYTELEVEL; return SLLM_OK; }
    if (!strcmp(type, "ByteFallback") || !strcmp(type, "Fuse") || !strcmp(type, "Replace")) {
        if (!d->decoder) d->decoder = TOK_DEC_SPM;
        return SLLM_OK;
    }
    if (!strcmp(type, "Strip")) {
        json_t *st = json_object_get(dec, "start");
        const char *c = jstr(dec, "content");
        if (json_is_integer(st) && json_integer_value(st) >= 1 && c && !strcmp(c, " ")) d->strip_leading_space = true;
        return SLLM_OK;
    }
    if (!strcmp(type, "Metaspace")) {
        d->decoder = TOK_DEC_SPM;
        const char *sch = jstr(dec, "prepend_scheme");
        d->strip_leading_space = jbool(dec, "add_prefix_space", !(sch && !strcmp(sch, "never")));
        return SLLM_OK;
    }
    return err_set(SLLM_ERR_UNSUPPORTED, "%s: decoder type '%s' is not supported", path, type);
}

static int32_t token_id(const tok_desc *d, json_t *special_map, const char *name) {
    if (special_map) {
        json_t *e = json_object_get(special_map, name), *ids = json_object_get(e, "ids");
        if (json_is_array(ids) && json_array_size(ids) == 1 && json_is_integer(json_array_get(ids, 0)))
            return (int32_t)json_integer_value(json_array_get(ids, 0));
    }
    for (int32_t i = 0; i < d->n_vocab; i++)
        if (d->tokens[i] && !strcmp(d->tokens[i], name)) return i;
    return -1;
}

static int parse_post(const char *path, json_t *pp, tok_desc *d) {
    if (!pp || json_is_null(pp)) return SLLM_OK;
    const char *type = jstr(pp, "type");
    if (!type) return err_set(SLLM_ERR_FORMAT, "%s: post_processor: missing 'type'", path);
    if (!strcmp(type, "Sequence")) {
        json_t *arr = json_object_get(pp, "processors"), *x;
        size_t i;
        json_array_foreach(arr, i, x) { int rc = parse_post(path, x, d); if (rc) return rc; }
        return SLLM_OK;
    }
    if (!strcmp(type, "ByteLevel")) return SLLM_OK;
    if (!strcmp(type, "RobertaProcessing") || !strcmp(type, "BertProcessing")) {
        json_t *cls = json_object_get(pp, "cls"), *sep = json_object_get(pp, "sep");
        if (json_is_array(cls) && json_is_integer(json_array_get(cls, 1)))
            d->prefix[d->n_prefix++] = (int32_t)json_integer_value(json_array_get(cls, 1));
        if (json_is_array(sep) && json_is_integer(json_array_get(sep, 1)))
            d->suffix[d->n_suffix++] = (int32_t)json_integer_value(json_array_get(sep, 1));
        return SLLM_OK;
    }
    if (!strcmp(type, "TemplateProcessing")) {
        json_t *single = json_object_get(pp, "single"), *sm = json_object_get(pp, "special_tokens"), *x;
        size_t i;
        bool after = false;
        if (!json_is_array(single)) return err_set(SLLM_ERR_FORMAT, "%s: post_processor: 'single' must be an array", path);
        json_array_foreach(single, i, x) {
            if (json_object_get(x, "Sequence")) { after = true; continue; }
            const char *name = jstr(json_object_get(x, "SpecialToken"), "id");
            if (!name) return err_set(SLLM_ERR_FORMAT, "%s: post_processor: bad 'single' entry %zu", path, i);
            int32_t id = token_id(d, sm, name);
            if (id < 0) return err_set(SLLM_ERR_FORMAT, "%s: post_processor: unknown special token '%s'", path, name);
            if (after ? d->n_suffix >= 4 : d->n_prefix >= 4)
                return err_set(SLLM_ERR_UNSUPPORTED, "%s: post_processor: too many special tokens", path);
            if (after) d->suffix[d->n_suffix++] = id; else d->prefix[d->n_prefix++] = id;
        }
        return SLLM_OK;
    }
    return err_set(SLLM_ERR_UNSUPPORTED, "%s: post_processor type '%s' is not supported", path, type);
}

// tokenizer_config.json values may be a string or an AddedToken object {"content": ...}.
static const char *config_token(json_t *cfg, const char *key) {
    json_t *v = json_object_get(cfg, key);
    if (json_is_string(v)) return json_string_value(v);
    if (json_is_object(v)) return jstr(v, "content");
    return NULL;
}

int tok_desc_from_hf(const char *path_in, tok_desc *d) {
    memset(d, 0, sizeof *d);
    char path[4096], cfg_path[4096];
    struct stat st;
    if (stat(path_in, &st) != 0) return err_set(SLLM_ERR_IO, "%s: cannot open tokenizer (no such file or directory)", path_in);
    if (S_ISDIR(st.st_mode)) {
        snprintf(path, sizeof path, "%s/tokenizer.json", path_in);
        snprintf(cfg_path, sizeof cfg_path, "%s/tokenizer_config.json", path_in);
    } else {
        snprintf(path, sizeof path, "%s", path_in);
        const char *slash = strrchr(path_in, '/');
        int dl = slash ? (int)(slash - path_in) : 1;
        snprintf(cfg_path, sizeof cfg_path, "%.*s/tokenizer_config.json", dl, slash ? path_in : ".");
    }
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je), *cfg = NULL;
    if (!root) {
        if (access(path, R_OK) != 0) return err_set(SLLM_ERR_IO, "%s: cannot read tokenizer.json", path);
        return err_set(SLLM_ERR_FORMAT, "%s: line %d, column %d: invalid JSON: %s", path, je.line, je.column, je.text);
    }
    if (access(cfg_path, R_OK) == 0) {
        // Integers as reals: configs hold values like model_max_length = 1e30 that overflow
        // json_int_t, and we only read strings and booleans from this file.
        cfg = json_load_file(cfg_path, JSON_DECODE_INT_AS_REAL, &je);
        if (!cfg) {
            json_decref(root);
            return err_set(SLLM_ERR_FORMAT, "%s: line %d, column %d: invalid JSON: %s", cfg_path, je.line, je.column, je.text);
        }
    }
    int rc = SLLM_OK;
    if (!(d->source = strdup(path))) { rc = NOMEM(); goto done; }
    json_t *model = json_object_get(root, "model");
    if (!json_is_object(model)) { rc = err_set(SLLM_ERR_FORMAT, "%s: missing object 'model'", path); goto done; }
    const char *mtype = jstr(model, "type");
    if (!mtype && json_object_get(model, "merges")) mtype = "BPE";
    if (!mtype || strcmp(mtype, "BPE")) {
        rc = err_set(SLLM_ERR_UNSUPPORTED, "%s: model.type '%s' is not supported (only BPE)", path, mtype ? mtype : "(missing)");
        goto done;
    }
    d->model = TOK_MODEL_BPE;
    const char *cs = jstr(model, "continuing_subword_prefix"), *ew = jstr(model, "end_of_word_suffix");
    if ((cs && cs[0]) || (ew && ew[0])) {
        rc = err_set(SLLM_ERR_UNSUPPORTED, "%s: model: continuing_subword_prefix/end_of_word_suffix are not supported", path);
        goto done;
    }
    json_t *vocab = json_object_get(model, "vocab"), *merges = json_object_get(model, "merges");
    json_t *added = json_object_get(root, "added_tokens");
    if (!json_is_object(vocab)) { rc = err_set(SLLM_ERR_FORMAT, "%s: missing object 'model.vocab'", path); goto done; }
    if (!json_is_array(merges)) { rc = err_set(SLLM_ERR_FORMAT, "%s: missing array 'model.merges'", path); goto done; }
    // Vocabulary size: the largest id among vocab and added tokens, plus one.
    int64_t maxid = -1;
    const char *key;
    json_t *val, *x;
    size_t i;
    json_object_foreach(vocab, key, val) {
        if (!json_is_integer(val) || json_integer_value(val) < 0 || json_integer_value(val) > 100000000) {
            rc = err_set(SLLM_ERR_FORMAT, "%s: model.vocab['%s']: bad id", path, key); goto done;
        }
        if (json_integer_value(val) > maxid) maxid = json_integer_value(val);
    }
    if (added && !json_is_array(added)) { rc = err_set(SLLM_ERR_FORMAT, "%s: 'added_tokens' must be an array", path); goto done; }
    json_array_foreach(added, i, x) {
        json_t *id = json_object_get(x, "id");
        if (!json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) > 100000000 || !jstr(x, "content")) {
            rc = err_set(SLLM_ERR_FORMAT, "%s: added_tokens[%zu]: needs integer 'id' and string 'content'", path, i); goto done;
        }
        if (json_integer_value(id) > maxid) maxid = json_integer_value(id);
    }
    if (maxid < 0) { rc = err_set(SLLM_ERR_FORMAT, "%s: empty vocabulary", path); goto done; }
    d->n_vocab = (int32_t)(maxid + 1);
    if (!(d->tokens = calloc((size_t)d->n_vocab, sizeof *d->tokens))) { rc = NOMEM(); goto done; }
    json_object_foreach(vocab, key, val) {
        int64_t id = json_integer_value(val);
        if (d->tokens[id]) continue;
        if (!(d->tokens[id] = strdup(key))) { rc = NOMEM(); goto done; }
    }
    if (json_array_size(added)) {
        if (!(d->added = calloc(json_array_size(added), sizeof *d->added))) { rc = NOMEM(); goto done; }
        json_array_foreach(added, i, x) {
            tok_added *a = &d->added[d->n_added++];
            a->id = (int32_t)json_integer_value(json_object_get(x, "id"));
            if (!(a->content = strdup(jstr(x, "content")))) { rc = NOMEM(); goto done; }
            a->special = jbool(x, "special", false);
            a->lstrip = jbool(x, "lstrip", false);
            a->rstrip = jbool(x, "rstrip", false);
            a->normalized = jbool(x, "normalized", !a->special);
            if (!d->tokens[a->id] && !(d->tokens[a->id] = strdup(a->content))) { rc = NOMEM(); goto done; }
        }
    }
    d->n_merges = (int64_t)json_array_size(merges);
    d->merges_l = calloc((size_t)d->n_merges + 1, sizeof *d->merges_l);
    d->merges_r = calloc((size_t)d->n_merges + 1, sizeof *d->merges_r);
    if (!d->merges_l || !d->merges_r) { rc = NOMEM(); goto done; }
    json_array_foreach(merges, i, x) {
        const char *l = NULL, *r = NULL;
        size_t ll = 0;
        if (json_is_string(x)) {   // "a b" (older format): split at the first space
            const char *s = json_string_value(x), *sp = strchr(s, ' ');
            if (sp) { l = s; ll = (size_t)(sp - s); r = sp + 1; }
        } else if (json_is_array(x) && json_array_size(x) == 2 && json_is_string(json_array_get(x, 0)) &&
                   json_is_string(json_array_get(x, 1))) {
            l = json_string_value(json_array_get(x, 0));
            ll = strlen(l);
            r = json_string_value(json_array_get(x, 1));
        }
        if (!l) { rc = err_set(SLLM_ERR_FORMAT, "%s: model.merges[%zu]: expected \"a b\" or [\"a\", \"b\"]", path, i); goto done; }
        if (!(d->merges_l[i] = strndup(l, ll)) || !(d->merges_r[i] = strdup(r))) { rc = NOMEM(); goto done; }
    }
    d->byte_fallback = jbool(model, "byte_fallback", false);
    d->ignore_merges = jbool(model, "ignore_merges", false);
    d->bos = d->eos = d->eot = d->eom = d->pad = d->unk = -1;
    const char *unk = jstr(model, "unk_token");
    if (unk) d->unk = token_id(d, NULL, unk);
    if ((rc = parse_normalizer(path, json_object_get(root, "normalizer"), d))) goto done;
    if ((rc = parse_pre(path, json_object_get(root, "pre_tokenizer"), d))) goto done;
    if ((rc = parse_decoder(path, json_object_get(root, "decoder"), d))) goto done;
    if (!d->decoder) {
        bool bl = false;
        for (int32_t k = 0; k < d->n_pre; k++) bl |= d->pre[k].kind == TOK_STEP_BYTELEVEL;
        d->decoder = bl ? TOK_DEC_BYTELEVEL : TOK_DEC_SPM;
    }
    if ((rc = parse_post(path, json_object_get(root, "post_processor"), d))) goto done;
    if (cfg) {
        const char *b = config_token(cfg, "bos_token"), *e = config_token(cfg, "eos_token"),
                   *p = config_token(cfg, "pad_token"), *u = config_token(cfg, "unk_token");
        if (b) d->bos = token_id(d, NULL, b);
        if (e) d->eos = token_id(d, NULL, e);
        if (p) d->pad = token_id(d, NULL, p);
        if (u && d->unk < 0) d->unk = token_id(d, NULL, u);
        // Without a template post-processor, add_bos_token/add_eos_token decide.
        if (!d->n_prefix && jbool(cfg, "add_bos_token", false) && d->bos >= 0) d->prefix[d->n_prefix++] = d->bos;
        if (!d->n_suffix && jbool(cfg, "add_eos_token", false) && d->eos >= 0) d->suffix[d->n_suffix++] = d->eos;
    }
    if (d->bos < 0 && d->n_prefix) d->bos = d->prefix[0];
    d->add_bos = d->n_prefix > 0;
    d->add_eos = d->n_suffix > 0;
done:
    json_decref(root);
    if (cfg) json_decref(cfg);
    if (rc) tok_desc_free(d);
    return rc;
}

int tok_load_hf(const char *path, tok **out) {
    tok_desc d;
    *out = NULL;
    int rc = tok_desc_from_hf(path, &d);
    if (rc) return rc;
    rc = tok_build(&d, out);
    tok_desc_free(&d);
    return rc;
}
