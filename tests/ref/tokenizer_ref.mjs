// Reference token ids for tests/tokenizer_corpus.jsonl from @lenml/tokenizers@3.7.2 (a port of the
// Hugging Face tokenizers used by transformers.js) with the real Qwen3, Llama 3 and Gemma 3
// tokenizer.json files. Writes tests/ref/tokenizer_ref_ids.json, which test_tokenizer.c compares
// against (no network or node needed at test time).
//   node tests/ref/tokenizer_ref.mjs   (after scripts/oracles.sh)
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const nm = path.join(root, "tests/oracles/node_modules");
const { TokenizerLoader } = await import(path.join(nm, "@lenml/tokenizers/dist/main.mjs"));

const cases = fs.readFileSync(path.join(root, "tests/tokenizer_corpus.jsonl"), "utf8")
  .split("\n").filter((l) => l.length > 0).map((l) => JSON.parse(l));

const out = { generator: "@lenml/tokenizers@3.7.2", cases, tokenizers: {} };
for (const name of ["qwen3", "llama3", "gemma3"]) {
  const dir = path.join(nm, `@lenml/tokenizer-${name}/models`);
  const tokenizerJSON = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8"));
  const tokenizerConfig = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8"));
  const tk = TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig });
  // Special-token parsing off (HF split_special_tokens): the same tokenizer without its special
  // added tokens, so their text goes through the model like any other text.
  const noSpecialJSON = { ...tokenizerJSON, added_tokens: tokenizerJSON.added_tokens.filter((a) => !a.special) };
  const tkns = TokenizerLoader.fromPreTrained({ tokenizerJSON: noSpecialJSON, tokenizerConfig });
  const r = { ids: [], ids_add_special: [], ids_no_special: [], decoded: [] };
  for (const c of cases) {
    const ids = tk.encode(c, { add_special_tokens: false });
    r.ids.push(ids);
    r.ids_add_special.push(tk.encode(c, { add_special_tokens: true }));
    r.ids_no_special.push(tkns.encode(c, { add_special_tokens: false }));
    r.decoded.push(ids.length ? tk.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false }) : "");
  }
  out.tokenizers[name] = r;
}
const dst = path.join(here, "tokenizer_ref_ids.json");
fs.writeFileSync(dst, JSON.stringify(out) + "\n");
console.log(`wrote ${dst}: ${cases.length} cases x ${Object.keys(out.tokenizers).length} tokenizers`);
