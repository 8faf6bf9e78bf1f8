// Renders every tests/templates/*.jinja over every tests/chat_cases/*.json with @huggingface/jinja
// (the engine transformers.js uses) and writes tests/ref/jinja_ref.json, which tests/test_jinja.c
// compares against byte for byte. Run: scripts/oracles.sh && node tests/ref/jinja_ref.mjs
// The context is built as chat_render() builds it (src/text/chat_template.c): messages (tool-call
// arguments given as a JSON-object string are parsed), tools (only when present),
// add_generation_prompt, bos_token/eos_token (only when not null), then the case's extra kwargs.
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const tests = join(here, "..");
const require = createRequire(join(tests, "oracles", "package.json"));
const { Template } = await import(require.resolve("@huggingface/jinja"));
const version = JSON.parse(readFileSync(join(tests, "oracles/node_modules/@huggingface/jinja/package.json"), "utf8")).version;

const tokens = JSON.parse(readFileSync(join(tests, "templates/tokens.json"), "utf8"));
const templates = readdirSync(join(tests, "templates")).filter((f) => f.endsWith(".jinja")).sort();
const cases = readdirSync(join(tests, "chat_cases")).filter((f) => f.endsWith(".json")).sort();

function normalize(messages) {
  return messages.map((m) => {
    if (!Array.isArray(m.tool_calls)) return m;
    const calls = m.tool_calls.map((c) => {
      const a = c?.function?.arguments;
      if (typeof a !== "string") return c;
      try {
        const p = JSON.parse(a);
        if (p && typeof p === "object" && !Array.isArray(p)) return { ...c, function: { ...c.function, arguments: p } };
      } catch {}
      return c;
    });
    return { ...m, tool_calls: calls };
  });
}

const results = [];
for (const tf of templates) {
  const name = tf.replace(/\.jinja$/, "");
  const src = readFileSync(join(tests, "templates", tf), "utf8");
  const tok = tokens[name] ?? { bos: null, eos: null };
  let tpl = null, parseError = null;
  try { tpl = new Template(src); } catch (e) { parseError = String(e.message ?? e); }
  for (const cf of cases) {
    const cname = cf.replace(/\.json$/, "");
    const c = JSON.parse(readFileSync(join(tests, "chat_cases", cf), "utf8"));
    // Granite 3.3 puts strftime_now() (today's date) into its default system prompt: left out.
    if (name === "granite3.3" && c.messages[0]?.role !== "system") {
      results.push({ template: name, case: cname, skipped: "output depends on today's date (strftime_now)" });
      continue;
    }
    const ctx = { messages: normalize(c.messages) };
    if (c.tools) ctx.tools = c.tools;
    ctx.add_generation_prompt = !!c.add_generation_prompt;
    if (tok.bos != null) ctx.bos_token = tok.bos;
    if (tok.eos != null) ctx.eos_token = tok.eos;
    Object.assign(ctx, c.kwargs ?? {});
    const r = { template: name, case: cname };
    if (parseError) r.error = parseError;
    else {
      try { r.output = tpl.render(ctx); } catch (e) { r.error = String(e.message ?? e); }
    }
    results.push(r);
  }
}

// Small templates covering the engine feature by feature, rendered with this context.
const CTX = {
  s: "  Hello, World  ", t: "a-b-c", n: 7, f: 2.5, w: 3.0, neg: -4, yes: true, no: false, nil: null,
  l: [3, 1, 2], words: ["b", "A", "c"], e: [], d: { b: 1, a: [1, 2], c: { x: "y" } },
  msgs: [{ role: "user", content: "hi" }, { role: "assistant", content: "yo" }, { role: "user", content: "bye" }],
  u: "héllo wörld ✓ 🙂", q: "say \"hi\"\n\tnow\\", ctl: "a\u0001b\u007f",
};
const SNIPPETS = [
  "{{ 1 + 2 * 3 }}|{{ (1 + 2) * 3 }}|{{ 7 // 2 }}|{{ -7 // 2 }}|{{ 7 % 3 }}|{{ -7 % 3 }}|{{ 2 ** 10 }}|{{ 7 / 2 }}|{{ 6 / 2 }}",
  "{{ 1.5 + 1 }}|{{ 0.1 + 0.2 }}|{{ 1000 if false else 3.0 }}|{{ f * 2 }}|{{ w }}|{{ n / 3 }}|{{ 2 ** -1 }}|{{ 10 / 4 * 4 }}",
  "{{ 'a' ~ 1 ~ 2.0 ~ true ~ [1, 'x'] }}|{{ 'a' + 1 }}|{{ 1 + 'a' }}|{{ 'x' + 2.5 }}|{{ n ~ f ~ w }}",
  "{{ true }} {{ false }} {{ none }} {{ nil }} {{ undefined_thing }} {{ [1, none, 'a', true, 2.0] }} {{ d }}",
  "{{ 1 == 1.0 }} {{ 1 == '1' }} {{ 'a' == 'a' }} {{ [1] == [1] }} {{ l == l }} {{ nil == undefined_x }} {{ true == 1 }} {{ 'a' != 'b' }}",
  "{{ 2 < 3 }} {{ 3 <= 3 }} {{ 2.5 > 2 }} {{ 1 >= 2 }} {{ not 1 }} {{ not '' }} {{ not [] }} {{ not {} }}",
  "{{ 1 and 'x' }}|{{ 0 and 'x' }}|{{ '' or 'y' }}|{{ [] or 'z' }}|{{ none or 0 }}|{{ 'a' if yes else 'b' }}|{{ 'a' if no }}",
  "{{ 2 in l }} {{ 5 not in l }} {{ 'ell' in 'hello' }} {{ 'b' in d }} {{ 'z' not in d }} {{ 'x' in undefined_y }} {{ '1' in [1] }}",
  "{{ s | trim }}|{{ s | upper }}|{{ s | lower }}|{{ 'hello world-foo_bar x1y' | title }}|{{ 'hELLO' | capitalize }}|{{ s | length }}",
  "{{ s.strip() }}|{{ s.lstrip() }}|{{ s.rstrip() }}|{{ '\\n\\nabc\\n'.lstrip('\\n') }}|{{ 'xxhixx'.strip('x') }}",
  "{{ t.split('-') }} {{ t.split('-', 1) }} {{ ' a  b c '.split() }} {{ ' a  b c '.split(none, 1) }} {{ t.split('-')[-1] }}",
  "{{ t.replace('-', '+') }} {{ t.replace('-', '', 1) }} {{ 'abc'.replace('', '.') }} {{ t | replace('-', '=') }}",
  "{{ t.startswith('a') }} {{ t.endswith('c') }} {{ t.startswith(('x', 'a-')) }} {{ t.endswith(('b', 'c')) }} {{ t.upper() }} {{ t.title() }}",
  "{{ l[0] }} {{ l[-1] }} {{ l[1:] }} {{ l[:2] }} {{ l[::-1] }} {{ l[::2] }} {{ 'hello'[1:3] }} {{ u[::-1] }} {{ 'abc'[-1] }} {{ l[9] }}",
  "{{ d.a }} {{ d['b'] }} {{ d.c.x }} {{ d.missing }} {{ d.missing is defined }} {{ d.get('b') }} {{ d.get('zz', 'dflt') }} {{ d.get('zz') }}",
  "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}|{% for k in d %}{{ k }}{% endfor %}|{{ d.keys() }}|{{ d.values() | length }}",
  "{% for x in l %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.revindex0 }}/{{ loop.first }}/{{ loop.last }}/{{ loop.length }};{% endfor %}",
  "{% for m in msgs %}[{{ loop.previtem.role if loop.previtem is defined else '-' }}>{{ m.role }}>{{ loop.nextitem.role if loop.nextitem else '-' }}]{% endfor %}",
  "{% for x in e %}{{ x }}{% else %}empty{% endfor %}|{% for x in l if x > 1 %}{{ x }}{{ loop.index }}{% endfor %}|{% for x in l %}{% if x == 1 %}{% continue %}{% endif %}{{ x }}{% endfor %}",
  "{% for x in [1, 2, 3, 4] %}{{ x }}{% if x == 2 %}{% break %}{% endif %}{% endfor %}|{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }},{% endfor %}",
  "{% set x = 1 %}{% for i in l %}{% set x = i %}{% endfor %}{{ x }}|{% set ns = namespace(v=0) %}{% for i in l %}{% set ns.v = ns.v + i %}{% endfor %}{{ ns.v }}",
  "{% set a, b = 1, 2 %}{{ a }}{{ b }}|{% set blk %}inner {{ n }}{% endset %}[{{ blk }}]|{% set ns = namespace() %}{{ ns.nothing is defined }}",
  "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('Bob') }} {{ greet('Al', '?') }} {{ greet(name='Cy', punct='.') }}",
  "{% macro wrap() %}<{{ caller() }}>{% endmacro %}{% call wrap() %}body {{ n }}{% endcall %}|{% macro m2(a) %}{{ a }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m2(1, 2, 3, k=4) }}",
  "{% filter upper %}shout {{ t }}{% endfilter %}|{{ l | first }}{{ l | last }}{{ l | length }}{{ l | reverse }}{{ l | sort }}{{ words | sort }}{{ l | join(', ') }}{{ l | join }}",
  "{{ l | tojson }} {{ d | tojson }} {{ u | tojson }} {{ q | tojson }} {{ ctl | tojson }} {{ nil | tojson }} {{ undefined_z | tojson }} {{ f | tojson }} {{ w | tojson }}",
  "{{ d | tojson(indent=2) }}|{{ l | tojson(indent=4) }}|{{ e | tojson(indent=2) }}|{{ {} | tojson(indent=2) }}",
  "{{ u | tojson(ensure_ascii=true) }} {{ d | tojson(sort_keys=true) }} {{ d | tojson(separators=(',', ':')) }}",
  "{{ msgs | selectattr('role', 'equalto', 'user') | list | length }} {{ msgs | rejectattr('role', 'equalto', 'user') | map(attribute='content') | list }} {{ msgs | map(attribute='content') | join('/') }}",
  "{{ msgs | selectattr('content') | list | length }} {{ msgs | map(attribute='nope', default='?') | list }} {{ msgs | sort(attribute='content') | map(attribute='content') | join }}",
  "{{ [3, 1, 2] | sort(reverse=true) }} {{ ['b', 'A', 'c'] | sort(case_sensitive=true) }} {{ [1, 2, 1, 3, 2] | unique | list }} {{ d | dictsort }} {{ d | items | length }}",
  "{{ '42' | int }} {{ '4.5x' | float }} {{ 'abc' | int }} {{ 'abc' | int(7) }} {{ 3.9 | int }} {{ 3 | float }} {{ true | int }} {{ -3 | abs }} {{ n | string }} {{ l | string }}",
  "{{ undefined_v | default('d') }} {{ nil | default('d') }} {{ '' | default('d', true) }} {{ 0 | default('d', boolean=true) }} {{ s | default('d') }}",
  "{{ 'a\\nb\\n\\nc' | indent }}|{{ 'a\\nb' | indent(2, true) }}|{{ 'a\\n\\nb' | indent(width=3, blank=true) }}",
  "{{ n is defined }} {{ zz is undefined }} {{ nil is none }} {{ 'x' is string }} {{ n is number }} {{ f is number }} {{ n is integer }} {{ f is integer }} {{ yes is boolean }}",
  "{{ d is mapping }} {{ l is iterable }} {{ 'x' is iterable }} {{ d is iterable }} {{ l is sequence }} {{ n is odd }} {{ n is even }} {{ yes is true }} {{ no is false }} {{ 'ab' is lower }} {{ 'AB' is upper }} {{ greet is callable }} {{ n is not none }}",
  "{{ range(3) }} {{ range(1, 4) }} {{ range(10, 0, -3) }} {% for i in range(2) %}{{ i }}{% endfor %} {{ ns is defined }} {{ namespace(a=1).a }}",
  "{{ u | length }} {{ u | upper }} {{ u.title() }} {{ u[1] }} {{ '🙂x' | length }} {{ 'ß' | upper }}",
  "{{ messages_missing | length }}",
  "{{ n + }}",
  "{% if %}x{% endif %}",
  "{{ raise_exception('custom failure') }}",
  "{% for x in 5 %}{% endfor %}",
  "{{ [1, 2] | first | upper }}",
  "{{ 'abc' | nosuch }}",
  "{{ x.y.z is defined }} {{ none.attr }}",
  "a\n  {% if true %}\n    b\n  {% endif %}\n  c {{- ' d' }}  \n{%- if true -%}  e  {%- endif %}\nf",
  "{# comment #}\n  {#- stripped -#}  \nx {%- set y = 1 %}\n\ny{{ y }}\n{% generation %}gen{% endgeneration %}\nz\n",
  "{{ \"dq 'x'\" }} {{ 'sq \\'y\\'' }} {{ 'tab\\there' }} {{ '\\u00e9\\x41' }} {{ 'a' 'b' }}",
  "{{ [1, 2] + [3] }} {{ {'a': 1, 'b': [2]} }} {{ (1, 2)[0] }} {{ {'k': 'v'}.k }} {{ l.length }} {{ t.length }}",
  "{{ -n }} {{ +n }} {{ - 2.5 }} {{ -(n) }} {{ 5 - -2 }} {{ n-1 }} {{ [-1, -2.5] }}",
];
const snippets = SNIPPETS.map((src) => {
  const r = { src, ctx: CTX };
  try { r.output = new Template(src).render({ ...CTX }); } catch (e) { r.error = String(e.message ?? e); }
  return r;
});
const out = { generator: "tests/ref/jinja_ref.mjs", engine: `@huggingface/jinja ${version}`, results, snippets };
writeFileSync(join(here, "jinja_ref.json"), JSON.stringify(out, null, 1) + "\n");
const n = (k) => results.filter((r) => k in r).length;
console.log(`wrote ${snippets.length} snippets (${snippets.filter((r) => "error" in r).length} errors), ${results.length} results: ${n("output")} rendered, ${n("error")} errors, ${n("skipped")} skipped`);
