#!/usr/bin/env node
// Classify texts with an edgekit artifact, without Python: the steps of
// docs/artifact-format.md ("Loading it without Python") in plain JavaScript.
//
//   node predict.mjs ARTIFACT_DIR "text one" "text two"
//   node predict.mjs ARTIFACT_DIR --file texts.txt --json
//
// Dependencies: onnxruntime-node (the model) and @huggingface/tokenizers (a pure-JS reader of
// Hugging Face tokenizer.json files). Works on Node 18 and later.

import { createHash } from "node:crypto";
import { lstat, readFile, realpath } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";

import { Tokenizer } from "@huggingface/tokenizers";
import ort from "onnxruntime-node";

const FORMAT_VERSION = 1;
// Where each model input comes from in one encoded text (docs/artifact-format.md, step 4).
const INPUT_COLUMNS = { input_ids: "ids", attention_mask: "attentionMask", token_type_ids: "typeIds" };

/** A problem with the artifact or the input that the user has to fix; printed as one line. */
export class ArtifactError extends Error {}

// ---- Steps 1 and 2: the manifest and the integrity check -------------------------------

const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");
const isObject = (value) => typeof value === "object" && value !== null && !Array.isArray(value);
const REEXPORT = "re-export the artifact (and do not load an artifact you did not make)";

/**
 * `relative` as a path inside `dir`, by the rules of docs/artifact-format.md ("Paths"): a plain
 * relative `/`-separated path (no `..`, `.`, empty part, `\\`, `:` or NUL), with no symbolic link
 * on the way, that resolves inside the folder. A name that breaks them is refused, never fixed.
 */
async function confinedPath(dir, relative, what) {
  const parts = typeof relative === "string" ? relative.split("/") : [];
  if (!relative || parts.some((p) => p === "" || p === "." || p === "..") || /[\\:\0]/.test(relative)) {
    const shown = JSON.stringify(relative);
    throw new ArtifactError(`${what} ${shown} is not a plain path inside the artifact folder; ${REEXPORT}.`);
  }
  let current = dir;
  for (const part of parts) {
    current = path.join(current, part);
    if ((await lstat(current).catch(() => null))?.isSymbolicLink()) {
      throw new ArtifactError(`${what} ${relative} goes through a symbolic link; ${REEXPORT}.`);
    }
  }
  const root = await realpath(dir);
  const real = await realpath(current).catch(() => null); // missing: reported by the caller
  if (real !== null && !real.startsWith(root + path.sep)) {
    throw new ArtifactError(`${what} ${relative} resolves outside the artifact folder; ${REEXPORT}.`);
  }
  return current;
}

/** The fields this reader uses, with the types it needs: anything else is one clear error. */
function checkManifest(manifest, dir) {
  const bad = (field) => new ArtifactError(`${dir}/manifest.json is malformed: ${field}; ${REEXPORT}.`);
  const labels = manifest.labels;
  if (!Array.isArray(labels) || labels.length === 0 || !labels.every((l) => typeof l === "string" && l)) {
    throw bad("labels must be a non-empty list of strings");
  }
  const files = manifest.files;
  if (!isObject(files) || !Object.values(files).every((h) => typeof h === "string" && /^[0-9a-f]{64}$/.test(h))) {
    throw bad("files must map paths to sha256 hex digests");
  }
  const t = manifest.tokenizer;
  const positive = (n, least) => Number.isInteger(n) && n >= least;
  if (!isObject(t) || !positive(t.max_length, 1) || !positive(t.pad_id, 0)) {
    throw bad("tokenizer must have a file, a positive max_length and a pad_id");
  }
  for (const key of ["inputs", "outputs"]) {
    if (!Array.isArray(manifest[key]) || manifest[key].length === 0 || !manifest[key].every(isObject)) {
      throw bad(`${key} must be a non-empty list of {name, dtype, shape}`);
    }
  }
}

/** Read manifest.json, refuse an unknown format version or engine, and verify every file. */
export async function loadManifest(dir) {
  return (await loadVerified(dir)).manifest;
}

/** The checked manifest and the verified bytes of the files this reader uses (see verifyFiles). */
async function loadVerified(dir) {
  let manifest;
  try {
    if ((await lstat(path.join(dir, "manifest.json"))).isSymbolicLink()) throw new Error("it is a symbolic link");
    manifest = JSON.parse(await readFile(path.join(dir, "manifest.json"), "utf8"));
  } catch (error) {
    throw new ArtifactError(
      `${dir} has no readable manifest.json (${error.message}); pass an artifact folder ` +
        "(for a bundle with summary.json, one of the variant folders it lists under locations).",
    );
  }
  if (!isObject(manifest)) throw new ArtifactError(`${dir}/manifest.json is not a JSON object; ${REEXPORT}.`);
  if (manifest.format_version !== FORMAT_VERSION) {
    throw new ArtifactError(
      `Artifact format version ${JSON.stringify(manifest.format_version)} is not supported ` +
        `(this reader knows version ${FORMAT_VERSION}).`,
    );
  }
  if (manifest.engine !== "onnxruntime") {
    throw new ArtifactError(
      `This artifact is for the engine "${manifest.engine}"; this example runs only "onnxruntime" ` +
        "artifacts (convert one with the default variant, or pick an onnx-* variant of a bundle).",
    );
  }
  checkManifest(manifest, dir);
  return { manifest, verified: await verifyFiles(dir, manifest) };
}

/**
 * Compare each file's sha256 with `files` (which lists every file except manifest.json).
 * Returns the verified bytes of the model and the tokenizer: the reader uses exactly what it
 * hashed (nothing is opened again, so a file swapped after the check is never used, and ONNX
 * Runtime, given bytes, opens no file of its own).
 */
async function verifyFiles(dir, manifest) {
  const files = manifest.files;
  if (Object.keys(files).length === 0) throw new ArtifactError(`${dir}/manifest.json lists no file hashes.`);
  // Everything this reader loads must be covered by a hash, or a swapped file would go unnoticed.
  const needed = [manifest.model_file, manifest.tokenizer.file];
  for (const name of needed) {
    if (!Object.hasOwn(files, name)) throw new ArtifactError(`manifest.json has no sha256 for ${name}; ${REEXPORT}.`);
  }
  const problems = [];
  const verified = new Map();
  for (const [relative, expected] of Object.entries(files)) {
    const file = await confinedPath(dir, relative, "File");
    const bytes = await readFile(file).catch(() => null);
    if (bytes === null) {
      problems.push(`${relative} is missing`);
    } else if (sha256(bytes) !== expected) {
      problems.push(`${relative} does not match its sha256 in manifest.json`);
    } else if (needed.includes(relative)) {
      verified.set(relative, bytes);
    }
  }
  if (problems.length > 0) {
    throw new ArtifactError(
      `Artifact ${dir} failed its integrity check: ${problems.join("; ")}. ` +
        "A file was changed after packaging; re-export the artifact.",
    );
  }
  return verified;
}

// ---- Step 3: tokenization -----------------------------------------------------------------

/**
 * A batch encoder that does what the Python runtime's `tokenizers` settings do:
 * truncation to `max_length` tokens *including* the special tokens, from `truncation_side`,
 * and padding to the longest text of the batch (on the right) with `pad_id`.
 *
 * @huggingface/tokenizers runs the normalizer, pre-tokenizer, WordPiece model and
 * post-processor of tokenizer.json, but neither truncates nor pads, so those two are here.
 * (The `truncation` and `padding` sections of tokenizer.json are ignored, as in Python:
 * the manifest's settings replace them.)
 */
export function makeEncoder(tokenizerJson, settings) {
  const tokenizer = new Tokenizer(tokenizerJson, {});
  fixBertNormalizer(tokenizer, tokenizerJson.normalizer);
  const maxLength = settings.max_length;
  const side = settings.truncation_side ?? "right";
  if (side !== "right" && side !== "left") throw new ArtifactError(`Unknown truncation_side "${side}".`);
  const post = tokenizer.post_processor; // e.g. TemplateProcessing: [CLS] $A [SEP]
  const addSpecial = (tokens) => (post ? post(tokens, null, true) : { tokens, token_type_ids: null });
  const specialCount = addSpecial([]).tokens.length; // 2 for BERT
  const unk = tokenizer.token_to_id(tokenizerJson.model?.unk_token ?? "[UNK]");

  function encodeOne(text) {
    // The text's own tokens, without special tokens, then cut so that the total fits.
    let tokens = tokenizer.encode(text, { add_special_tokens: false }).tokens;
    const budget = Math.max(maxLength - specialCount, 0);
    if (tokens.length > budget) {
      tokens = side === "right" ? tokens.slice(0, budget) : tokens.slice(tokens.length - budget);
    }
    const done = addSpecial(tokens);
    const ids = done.tokens.map((token) => tokenizer.token_to_id(token) ?? unk);
    const typeIds = done.token_type_ids ?? ids.map(() => 0);
    return { ids, typeIds, attentionMask: ids.map(() => 1) };
  }

  return function encodeBatch(texts) {
    const encoded = texts.map(encodeOne);
    const length = encoded.reduce((longest, e) => Math.max(longest, e.ids.length), 0);
    const pad = (values, fill) => values.concat(new Array(length - values.length).fill(fill));
    return encoded.map((e) => ({
      ids: pad(e.ids, settings.pad_id),
      typeIds: pad(e.typeIds, 0), // padding has type id 0 and attention 0
      attentionMask: pad(e.attentionMask, 0),
    }));
  };
}

// CJK ideographs outside the Basic Multilingual Plane, in the Rust BertNormalizer's ranges.
const ASTRAL_CJK = /[\u{20000}-\u{2A6DF}\u{2A700}-\u{2B81F}\u{2B920}-\u{2CEAF}\u{2F800}-\u{2FA1F}]/gu;

/**
 * Two ways in which @huggingface/tokenizers 0.2.0's BertNormalizer differs from the Rust one
 * that edgekit's Python runtime uses (found by comparing token ids), corrected before it runs:
 * - JS `toLowerCase` turns a word-final "Σ" into "ς"; Rust lower-cases each character on its
 *   own, so every "Σ" becomes "σ" (different tokens for Greek capitals);
 * - it looks for CJK ideographs one UTF-16 unit at a time, so it misses those outside the BMP
 *   (CJK Extension B and later) and does not split them into one token each as Rust does.
 */
function fixBertNormalizer(tokenizer, config) {
  if (config?.type !== "BertNormalizer" || !tokenizer.normalizer) return;
  const normalize = tokenizer.normalizer;
  tokenizer.normalizer = (text) => {
    if (config.lowercase) text = text.replaceAll("Σ", "σ");
    if (config.handle_chinese_chars) text = text.replace(ASTRAL_CJK, " $& ");
    return normalize(text);
  };
}

// ---- Steps 4 and 5: tensors, the session, softmax ------------------------------------------

/** Load an artifact folder: its manifest, `encode(texts)` (the model inputs) and `classify(texts)`. */
export async function loadArtifact(dir) {
  const { manifest, verified } = await loadVerified(dir);
  for (const input of manifest.inputs) {
    if (!Object.hasOwn(INPUT_COLUMNS, input.name) || input.dtype !== "int64") {
      throw new ArtifactError(`Unsupported model input ${input.name} (${input.dtype}).`);
    }
  }
  const tokenizerJson = JSON.parse(verified.get(manifest.tokenizer.file).toString("utf8"));
  const encodeBatch = makeEncoder(tokenizerJson, manifest.tokenizer);
  const options = {
    graphOptimizationLevel: "all", // ORT fuses attention and layer norm at load time
    executionMode: "sequential",
    interOpNumThreads: 1,
  };
  const model = verified.get(manifest.model_file); // the hashed bytes, not a path to re-open
  const session = await ort.InferenceSession.create(model, options).catch((error) => {
    throw new ArtifactError(`ONNX Runtime could not load ${manifest.model_file}: ${error.message}`);
  });
  const outputName = manifest.outputs[0].name; // "logits"
  if (!session.outputNames.includes(outputName)) {
    throw new ArtifactError(`The model has no output "${outputName}" (it has ${session.outputNames}).`);
  }

  /** The model's inputs for a batch, as plain arrays: {input_ids: [[...], ...], ...}. */
  function encode(texts) {
    texts.forEach((text, i) => {
      if (typeof text !== "string" || !text.trim()) throw new ArtifactError(`Text ${i} is empty; pass some text.`);
    });
    const rows = encodeBatch(texts);
    const column = (name) => rows.map((row) => row[INPUT_COLUMNS[name]]);
    return Object.fromEntries(manifest.inputs.map(({ name }) => [name, column(name)]));
  }

  // Dynamic INT8 computes activation scales over the whole padded batch, so its rows must run alone
  // to get the same answer in any batch (manifest `batch_invariant`; absent: ONNX Runtime INT8 is not).
  const batchInvariant =
    typeof manifest.batch_invariant === "boolean"
      ? manifest.batch_invariant
      : !(manifest.engine === "onnxruntime" && manifest.precision === "int8");

  async function classify(texts) {
    if (!batchInvariant && texts.length > 1) {
      const rows = [];
      for (const text of texts) rows.push(...(await classify([text])));
      return rows;
    }
    const columns = encode(texts);
    const feeds = {};
    for (const [name, rows] of Object.entries(columns)) {
      const data = BigInt64Array.from(rows.flat(), (v) => BigInt(v));
      feeds[name] = new ort.Tensor("int64", data, [rows.length, rows[0].length]); // (batch, sequence)
    }
    const output = (await session.run(feeds))[outputName]; // float32, (batch, num_labels)
    const width = output.dims[1];
    if (width !== manifest.labels.length) {
      const labels = manifest.labels.length;
      throw new ArtifactError(`The model gives ${width} scores but manifest.json names ${labels} labels.`);
    }
    return texts.map((text, row) => {
      const logits = Array.from(output.data.subarray(row * width, (row + 1) * width));
      const scores = softmax(logits);
      const labelId = scores.indexOf(Math.max(...scores));
      return { text, label: manifest.labels[labelId], label_id: labelId, scores, logits };
    });
  }

  return { manifest, encode, classify };
}

function softmax(logits) {
  const top = Math.max(...logits);
  const exps = logits.map((x) => Math.exp(x - top));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

// ---- Command line -----------------------------------------------------------------------------

const USAGE = `usage: node predict.mjs ARTIFACT_DIR [--json | --encode] [--batch-size N] (TEXT ... | --file FILE)
  TEXT            texts to classify (quote each one)
  --file FILE     also read texts from FILE, one per line (blank lines are skipped), after
                  the TEXT arguments
  --json          print one JSON object per text: text, label, label_id, scores, logits
  --encode        print each batch's model inputs (token ids, masks) as JSON instead; compare
                  them with a port's, or with edgekit's Python runtime
  --batch-size N  texts per model call (default 32); each batch is padded to its longest text`;

function parseArgs(argv) {
  const options = { dir: null, texts: [], file: null, json: false, encode: false, batchSize: 32 };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--json") options.json = true;
    else if (arg === "--encode") options.encode = true;
    else if (arg === "--file") options.file = value(argv, ++i, arg);
    else if (arg === "--batch-size") options.batchSize = Number(value(argv, ++i, arg));
    else if (arg === "-h" || arg === "--help") return null;
    else if (arg.startsWith("--")) throw new UsageError(`unknown option ${arg}`);
    else if (options.dir === null) options.dir = arg;
    else options.texts.push(arg);
  }
  if (!options.dir) throw new UsageError("pass an artifact folder");
  if (!Number.isInteger(options.batchSize) || options.batchSize < 1) {
    throw new UsageError("--batch-size takes a positive integer");
  }
  return options;
}

function value(argv, i, option) {
  if (i >= argv.length) throw new UsageError(`${option} needs a value`);
  return argv[i];
}

class UsageError extends Error {}

function formatLine(result, labels) {
  const scores = labels.map((label, i) => `${label} ${result.scores[i].toFixed(4)}`).join(", ");
  return `${result.label}\t${result.scores[result.label_id].toFixed(4)}\t[${scores}]\t${result.text}`;
}

async function main(argv) {
  const options = parseArgs(argv);
  if (options === null) return console.log(USAGE);
  if (options.file) {
    const content = await readFile(options.file, "utf8").catch((error) => {
      throw new UsageError(`cannot read --file ${options.file}: ${error.message}`);
    });
    const lines = content.split(/\r?\n/);
    options.texts.push(...lines.filter((line) => line.trim()));
  }
  if (options.texts.length === 0) throw new UsageError("pass at least one text, or --file");
  const { manifest, encode, classify } = await loadArtifact(options.dir);
  for (let start = 0; start < options.texts.length; start += options.batchSize) {
    const batch = options.texts.slice(start, start + options.batchSize);
    if (options.encode) {
      console.log(JSON.stringify(encode(batch)));
      continue;
    }
    for (const result of await classify(batch)) {
      console.log(options.json ? JSON.stringify(result) : formatLine(result, manifest.labels));
    }
  }
}

// Run main() only when this file is the program, not when another module imports it.
if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).catch((error) => {
    if (error instanceof UsageError) {
      console.error(`predict.mjs: ${error.message}\n${USAGE}`);
      process.exit(2);
    }
    console.error(`predict.mjs: ${error instanceof ArtifactError ? error.message : error.stack ?? error}`);
    process.exit(1);
  });
}
