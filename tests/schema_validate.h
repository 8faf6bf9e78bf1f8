// An independent JSON Schema validator for the keyword subset text/json_schema.c supports (jansson +
// PCRE2 only; none of the converter's code), for tests that check generated instances
// (tests/test_grammar.c and tests/test_constrained.c).
//   bool schema_validate(root_schema, schema, instance, why, why_len)  -> false with a reason in why
#ifndef SLLM_TESTS_SCHEMA_VALIDATE_H
#define SLLM_TESTS_SCHEMA_VALIDATE_H
#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <jansson.h>
#include <math.h>
#include <pcre2.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static size_t sv_utf8_len(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static bool sv_re_match(const char *pat, const char *s) {
    int err;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &err, &off, NULL);
    if (!re) return false;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    int rc = pcre2_match(re, (PCRE2_SPTR)s, strlen(s), 0, 0, md, NULL);
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return rc >= 0;
}

static bool sv_valid_date(const char *s) {
    int y, m, d;
    char tail;
    return strlen(s) == 10 && sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) == 3 && m >= 1 && m <= 12 && d >= 1 && d <= 31 &&
           s[4] == '-' && s[7] == '-';
}
static bool sv_valid_time(const char *s) {
    return sv_re_match("^([01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d(\\.\\d+)?(Z|[+-]([01]\\d|2[0-3]):[0-5]\\d)$", s);
}
static bool sv_check_format(const char *f, const char *s) {
    if (!strcmp(f, "date")) return sv_valid_date(s);
    if (!strcmp(f, "time")) return sv_valid_time(s);
    if (!strcmp(f, "date-time")) {
        const char *t = strchr(s, 'T');
        if (!t || t - s != 10) return false;
        char d[11];
        memcpy(d, s, 10), d[10] = 0;
        return sv_valid_date(d) && sv_valid_time(t + 1);
    }
    if (!strcmp(f, "uuid")) return sv_re_match("^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", s);
    if (!strcmp(f, "email")) return sv_re_match("^[^@\\s]+@[^@\\s.]+(\\.[^@\\s.]+)+$", s);
    return true;  // other formats are annotations
}

static const json_t *sv_resolve(const json_t *root, const char *ref) {
    const json_t *cur = root;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", ref + 1);
    for (char *seg = strtok(buf, "/"); seg && cur; seg = strtok(NULL, "/")) cur = json_object_get(cur, seg);
    return cur;
}

static bool sv_is_type(const json_t *v, const char *t) {
    if (!strcmp(t, "object")) return json_is_object(v);
    if (!strcmp(t, "array")) return json_is_array(v);
    if (!strcmp(t, "string")) return json_is_string(v);
    if (!strcmp(t, "integer")) return json_is_integer(v) || (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)));
    if (!strcmp(t, "number")) return json_is_number(v);
    if (!strcmp(t, "boolean")) return json_is_boolean(v);
    if (!strcmp(t, "null")) return json_is_null(v);
    return false;
}

static bool schema_validate(const json_t *root, const json_t *s, const json_t *v, char *why, size_t wn);

static bool sv_fail(char *why, size_t wn, const char *msg, const char *kw) {
    snprintf(why, wn, "%s (%s)", msg, kw);
    return false;
}

static bool schema_validate(const json_t *root, const json_t *s, const json_t *v, char *why, size_t wn) {
    if (json_is_true(s)) return true;
    if (json_is_false(s)) return sv_fail(why, wn, "false schema", "");
    const json_t *x;
    if ((x = json_object_get(s, "$ref"))) {
        const json_t *t = sv_resolve(root, json_string_value(x));
        return t ? schema_validate(root, t, v, why, wn) : sv_fail(why, wn, "bad ref", "$ref");
    }
    if ((x = json_object_get(s, "const")) && !json_equal((json_t *)x, (json_t *)v)) return sv_fail(why, wn, "const mismatch", "const");
    if ((x = json_object_get(s, "enum"))) {
        bool any = false;
        size_t i;
        json_t *e;
        json_array_foreach(x, i, e) any |= json_equal(e, (json_t *)v);
        if (!any) return sv_fail(why, wn, "not in enum", "enum");
    }
    if ((x = json_object_get(s, "type"))) {
        bool ok = false;
        if (json_is_string(x)) ok = sv_is_type(v, json_string_value(x));
        else {
            size_t i;
            json_t *e;
            json_array_foreach(x, i, e) ok |= sv_is_type(v, json_string_value(e));
        }
        if (!ok) return sv_fail(why, wn, "wrong type", "type");
    }
    if ((x = json_object_get(s, "anyOf"))) {
        bool ok = false;
        size_t i;
        json_t *e;
        json_array_foreach(x, i, e) ok |= schema_validate(root, e, v, why, wn);
        if (!ok) return sv_fail(why, wn, "no branch", "anyOf");
    }
    if ((x = json_object_get(s, "oneOf"))) {
        int cnt = 0;
        size_t i;
        json_t *e;
        json_array_foreach(x, i, e) cnt += schema_validate(root, e, v, why, wn);
        if (cnt != 1) return sv_fail(why, wn, "not exactly one", "oneOf");
    }
    if ((x = json_object_get(s, "allOf"))) {
        size_t i;
        json_t *e;
        json_array_foreach(x, i, e) if (!schema_validate(root, e, v, why, wn)) return false;
    }
    if (json_is_string(v)) {
        size_t n = sv_utf8_len(json_string_value(v));
        if ((x = json_object_get(s, "minLength")) && (json_int_t)n < json_integer_value(x)) return sv_fail(why, wn, "too short", "minLength");
        if ((x = json_object_get(s, "maxLength")) && (json_int_t)n > json_integer_value(x)) return sv_fail(why, wn, "too long", "maxLength");
        if ((x = json_object_get(s, "format")) && !sv_check_format(json_string_value(x), json_string_value(v))) return sv_fail(why, wn, "bad format", json_string_value(x));
    }
    if (json_is_number(v)) {
        double d = json_number_value(v);
        if ((x = json_object_get(s, "minimum")) && d < json_number_value(x)) return sv_fail(why, wn, "below", "minimum");
        if ((x = json_object_get(s, "maximum")) && d > json_number_value(x)) return sv_fail(why, wn, "above", "maximum");
        if ((x = json_object_get(s, "exclusiveMinimum")) && d <= json_number_value(x)) return sv_fail(why, wn, "below", "exclusiveMinimum");
        if ((x = json_object_get(s, "exclusiveMaximum")) && d >= json_number_value(x)) return sv_fail(why, wn, "above", "exclusiveMaximum");
    }
    if (json_is_object(v)) {
        const json_t *props = json_object_get(s, "properties"), *addl = json_object_get(s, "additionalProperties");
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)v, key, val) {
            const json_t *ps = props ? json_object_get(props, key) : NULL;
            if (ps) { if (!schema_validate(root, ps, val, why, wn)) return false; }
            else if (addl && !schema_validate(root, addl, val, why, wn)) return sv_fail(why, wn, key, "additionalProperties");
        }
        size_t i;
        json_t *r;
        json_array_foreach(json_object_get(s, "required"), i, r)
            if (!json_object_get(v, json_string_value(r))) return sv_fail(why, wn, json_string_value(r), "required");
    }
    if (json_is_array(v)) {
        const json_t *pre = json_object_get(s, "prefixItems"), *items = json_object_get(s, "items");
        size_t np = pre ? json_array_size(pre) : 0, i;
        json_t *e;
        json_array_foreach((json_t *)v, i, e) {
            if (i < np) { if (!schema_validate(root, json_array_get(pre, i), e, why, wn)) return false; }
            else if (items && !schema_validate(root, items, e, why, wn)) return false;
        }
        if ((x = json_object_get(s, "minItems")) && (json_int_t)json_array_size(v) < json_integer_value(x)) return sv_fail(why, wn, "few", "minItems");
        if ((x = json_object_get(s, "maxItems")) && (json_int_t)json_array_size(v) > json_integer_value(x)) return sv_fail(why, wn, "many", "maxItems");
    }
    return true;
}

#endif
