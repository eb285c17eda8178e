// Every shell example in README.md and docs/*.md runs as written against the e2e server, so the
// docs cannot rot. Between a reader's terminal (at the repository root, `npm start` running) and
// this test only three things differ:
// - `localhost:8787`, where `npm start` listens, becomes this run's server;
// - AUTH_SECRET and LIVEKIT_API_SECRET in the environment are this server's, so `npm run token`
//   (scripts/dev-token.mjs reads AUTH_SECRET before .dev.vars) and the examples' LiveKit tokens
//   sign what it accepts;
// - alice, bob and carol get a suffix per block, so that no block meets the accounts, calls or
//   rooms another block or test left behind.
// A block fenced ```sh no-run is shown and not run (installing, starting the server, deploying).
// Each block runs with `bash -e -o pipefail`: any failing command fails it, not only the last.
//
// The TypeScript in the docs is type-checked as well (esbuild, which runs it, does not check
// types): every ```ts block (browser code and snippets that need a machine or a page to run) and
// every heredoc a shell block feeds to `esbuild --loader=ts`.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, inject, it } from "vitest";
import { authSecret, baseUrl } from "./server";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const DOCS = ["README.md", ...readdirSync(join(ROOT, "docs")).filter((f) => f.endsWith(".md")).sort().map((f) => `docs/${f}`)];
const SHELLS = new Set(["sh", "bash", "shell"]);
const NO_RUN = "no-run";
/** The address the examples use: `npm start`'s. */
const DOCUMENTED_HOST = "localhost:8787";
const README_MAX_LINES = 300;
/** A block that places a call, plays audio or waits for a status takes seconds, and a minute or more
 * on a loaded CI machine (each `npx buf curl` starts npm and buf). */
const BLOCK_TIMEOUT_MS = 180_000;

interface Block { file: string; line: number; lang: string; flags: string[]; body: string }

/** The fenced code blocks of a markdown file, with the line their fence opens on. */
function blocksOf(file: string): Block[] {
  const lines = readFileSync(join(ROOT, file), "utf8").split("\n");
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```(\S*)(.*)$/.exec(lines[i]);
    if (!open) continue;
    const end = lines.findIndex((l, j) => j > i && /^\s*```\s*$/.test(l));
    if (end < 0) throw new Error(`${file}:${i + 1}: code block never closes`);
    const indent = open[1].length;
    blocks.push({ file, line: i + 1, lang: open[2], flags: open[3].trim().split(/\s+/).filter(Boolean),
      body: lines.slice(i + 1, end).map((l) => l.slice(Math.min(indent, l.length - l.trimStart().length))).join("\n") });
    i = end;
  }
  return blocks;
}

const blocks = DOCS.flatMap(blocksOf);
const shellBlocks = blocks.filter((b) => SHELLS.has(b.lang));
const runnable = shellBlocks.filter((b) => !b.flags.includes(NO_RUN));

/** Where the TypeScript examples are written to be checked: inside node_modules, so their package
 * imports resolve as they do at the repository root. */
const TYPECHECK_DIR = join(ROOT, "node_modules/.cache/docs-examples");

/** The TypeScript of the docs: ```ts blocks, and the heredocs shell blocks hand to esbuild. */
function typeScriptOf(block: Block): string[] {
  if (block.lang === "ts") return [block.body];
  if (!SHELLS.has(block.lang)) return [];
  const lines = block.body.split("\n");
  const sources: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/--loader=ts <<'EOF'/.test(lines[i])) continue;
    const end = lines.indexOf("EOF", i + 1);
    sources.push(lines.slice(i + 1, end).join("\n"));
    i = end;
  }
  return sources;
}

/** The anchors GitHub gives a markdown file's headings: lower case, punctuation dropped, spaces as
 * hyphens, and -1, -2 … for repeats. */
function anchorsOf(path: string): Set<string> {
  const anchors = new Set<string>();
  const text = readFileSync(path, "utf8").replace(/^\s*```[\s\S]*?^\s*```/gm, "");
  for (const [, title] of text.matchAll(/^#{1,6}\s+(.+?)\s*#*$/gm)) {
    const base = title.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, "").trim().replace(/\s/g, "-");
    let anchor = base;
    for (let n = 1; anchors.has(anchor); n++) anchor = `${base}-${n}`;
    anchors.add(anchor);
  }
  return anchors;
}

/** The block as this run executes it: this server's address, and names of its own. */
function forThisRun(block: Block, index: number): string {
  const tag = `d${index}${Math.random().toString(36).slice(2, 6)}`;
  return block.body
    .replaceAll(DOCUMENTED_HOST, new URL(baseUrl).host)
    .replace(/\b(alice|bob|carol)\b/g, `$1_${tag}`);
}

function run(script: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolvePromise) => {
    const child = spawn("bash", ["-e", "-o", "pipefail", "-c", script], {
      cwd: ROOT,
      env: { ...process.env, AUTH_SECRET: authSecret, LIVEKIT_API_SECRET: inject("livekitApiSecret") },
      // Its own process group, so a block that hangs is stopped with everything it started.
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (d) => { output += d; });
    child.stderr.on("data", (d) => { output += d; });
    const timer = setTimeout(() => {
      output += `\n[stopped after ${BLOCK_TIMEOUT_MS / 1000} s]`;
      try { process.kill(-child.pid!, "SIGKILL"); } catch { /* already gone */ }
    }, BLOCK_TIMEOUT_MS);
    child.on("close", (code) => { clearTimeout(timer); resolvePromise({ code, output }); });
  });
}

describe("the docs", () => {
  it("keep the README within 300 lines", () => {
    expect(readFileSync(join(ROOT, "README.md"), "utf8").trimEnd().split("\n").length).toBeLessThanOrEqual(README_MAX_LINES);
  });

  it("link only to files and headings that exist", () => {
    const missing: string[] = [];
    for (const file of DOCS) {
      const text = readFileSync(join(ROOT, file), "utf8");
      for (const [, path, anchor] of text.matchAll(/\]\(([^)\s#]*)(?:#([^)\s]*))?\)/g)) {
        if (/^[a-z]+:/i.test(path)) continue; // http(s), mailto
        const target = path ? resolve(ROOT, dirname(file), path) : join(ROOT, file);
        if (!existsSync(target)) missing.push(`${file} → ${path}`);
        else if (anchor && target.endsWith(".md") && !anchorsOf(target).has(anchor)) missing.push(`${file} → ${path}#${anchor}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it("hold TypeScript that type-checks", { timeout: BLOCK_TIMEOUT_MS }, async () => {
    rmSync(TYPECHECK_DIR, { recursive: true, force: true });
    mkdirSync(TYPECHECK_DIR, { recursive: true });
    const files: string[] = [];
    for (const block of blocks) {
      typeScriptOf(block).forEach((source, n) => {
        const name = `${block.file.replace(/[/.]/g, "_")}_line${block.line}_${n}.ts`;
        // The examples import this repository's files as ./…, from its root.
        writeFileSync(join(TYPECHECK_DIR, name), source.replaceAll('from "./', `from "${ROOT}/`));
        files.push(name);
      });
    }
    writeFileSync(join(TYPECHECK_DIR, "tsconfig.json"), JSON.stringify({
      compilerOptions: {
        target: "ES2023", module: "ESNext", moduleResolution: "bundler", lib: ["ES2023", "DOM", "DOM.Iterable"],
        types: ["node"], strict: true, noEmit: true, skipLibCheck: true, allowJs: true, isolatedModules: true,
      },
      files,
    }));
    expect(files.length).toBeGreaterThan(0);
    const { code, output } = await run(`npx tsc -p ${JSON.stringify(TYPECHECK_DIR)}`);
    // Names in tsc's messages: docs_sip_md_line93_0.ts is the block at docs/sip.md line 93.
    expect(code, output).toBe(0);
  });

  it("mark the few shell blocks that do not run, and run the rest", () => {
    const skipped = shellBlocks.filter((b) => b.flags.includes(NO_RUN)).map((b) => `${b.file}:${b.line}`);
    expect(runnable.length).toBeGreaterThan(skipped.length);
  });
});

describe.each(runnable.map((block, index) => ({ block, index, name: `${block.file}:${block.line}` })))(
  "the shell example at $name", ({ block, index }) => {
    it("runs as written", { timeout: BLOCK_TIMEOUT_MS + 10_000 }, async () => {
      const { code, output } = await run(forThisRun(block, index));
      expect(code, `${block.file}:${block.line} exited ${code}:\n${output.slice(-4000)}`).toBe(0);
    });
  });
