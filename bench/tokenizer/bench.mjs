// SPDX-License-Identifier: MIT
// Encode throughput of @huggingface/tokenizers (the JS port of Hugging Face tokenizers) on a corpus
// file, paragraph by paragraph as bench_tokenizer.cpp does; one warm-up pass, then timed passes for
// at least --seconds. Prints one JSON line {mb_per_s (per CPU second of the process, as
// bench_tokenizer's per CPU second of its thread), mb_per_wall_s, tokens, bytes, passes}.
// Usage: node bench.mjs --npm DIR --tokenizer DIR --corpus FILE [--seconds S]
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith("--") ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
const require = createRequire(path.join(path.resolve(args.npm), "package.json"));
const mod = await import(pathToFileURL(require.resolve("@huggingface/tokenizers")).href);
const { Tokenizer } = mod.default ?? mod;
const read = (f) => JSON.parse(fs.readFileSync(path.join(args.tokenizer, f), "utf8"));
const config = fs.existsSync(path.join(args.tokenizer, "tokenizer_config.json")) ? read("tokenizer_config.json") : {};
const tok = new Tokenizer(read("tokenizer.json"), config);
const text = fs.readFileSync(args.corpus, "utf8");
const paragraphs = [];
for (let i = 0; i < text.length; ) {
  let j = text.indexOf("\n\n", i);
  j = j < 0 ? text.length : j + 2;
  paragraphs.push(text.slice(i, j));
  i = j;
}
const bytes = Buffer.byteLength(text, "utf8");
let tokens = 0;
for (const p of paragraphs) tokens += tok.encode(p).ids.length;
const seconds = Number(args.seconds ?? 3);
let passes = 0;
const start = process.hrtime.bigint();
const cpu0 = process.cpuUsage();
let cpu = 0;
while (cpu < seconds || passes < 2) {
  for (const p of paragraphs) tok.encode(p);
  ++passes;
  const c = process.cpuUsage(cpu0);
  cpu = (c.user + c.system) / 1e6;
}
const wall = Number(process.hrtime.bigint() - start) / 1e9;
console.log(JSON.stringify({ mb_per_s: (bytes * passes) / cpu / 1e6, mb_per_wall_s: (bytes * passes) / wall / 1e6, tokens, bytes, passes, cpu_seconds: cpu }));
