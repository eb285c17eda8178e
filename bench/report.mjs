// What a run tells about itself: progress lines on stderr, Markdown tables on stdout (pasteable
// into the README), and the machine and tool versions the results were taken with.
import { readFileSync } from "node:fs";
import os from "node:os";
import { join, resolve } from "node:path";
import { round } from "./stats.mjs";

const ROOT = resolve(import.meta.dirname, "..");

/** A progress line on stderr, stamped with the seconds since this process started: the clock
 * processes.mjs stamps BENCH_SERVER_LOGS with, so the two can be read side by side. */
export const log = (...args) => console.error(`[${(performance.now() / 1000).toFixed(1).padStart(6)} s]`, ...args);

/** The installed version of a package of this project, or null. */
export function pkgVersion(name) {
  try { return JSON.parse(readFileSync(join(ROOT, "node_modules", name, "package.json"), "utf8")).version; } catch { return null; }
}

export function machine() {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model ?? "unknown", cores: cpus.length, memoryGiB: round(os.totalmem() / 2 ** 30, 1),
    os: `${os.type()} ${os.release()} ${os.arch()}`, node: process.version,
    wrangler: pkgVersion("wrangler"), workerd: pkgVersion("workerd"), ws: pkgVersion("ws"), loadAverageAtStart: os.loadavg().map((l) => round(l, 2)),
  };
}

/** A number with `digits` decimals (null: as it is); anything else as it is; missing as "—". */
export const show = (v, digits = 2) => (v === null || v === undefined ? "—" : typeof v === "number" && digits !== null ? v.toFixed(digits) : String(v));

export function ratio(ours, theirs) {
  if (typeof ours !== "number" || typeof theirs !== "number" || theirs === 0) return "—";
  const r = ours / theirs;
  return `${r.toFixed(r < 10 ? 2 : r < 100 ? 1 : 0)}×`;
}

/** A Markdown table: columns padded to their widths, the first left-aligned, the rest right-aligned;
 * numbers are shown as they are, missing values as "—". */
export function table(header, rows) {
  const cells = rows.map((row) => row.map((c) => (c === null || c === undefined ? "—" : String(c))));
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c) => `| ${c.map((x, i) => (i === 0 ? x.padEnd(widths[i]) : x.padStart(widths[i]))).join(" | ")} |`;
  return [line(header), `|${widths.map((w, i) => (i === 0 ? "-".repeat(w + 2) : "-".repeat(w + 1) + ":")).join("|")}|`, ...cells.map(line)].join("\n");
}

/**
 * This Worker against `theirs` (a baseline's name), one metric a row: [metric, ours, theirs,
 * digits = 2 (null: numbers as they are), shownOurs, shownTheirs] — the last two replace a number's display (e.g. "400 (top
 * step)") while the ratio still comes from the numbers.
 */
export function comparisonTable(title, theirs, rows, ratioLabel = theirs) {
  const header = ["metric", "this Worker (wrangler dev)", theirs, `ratio ours/${ratioLabel}`];
  const cells = rows.map(([metric, ours, base, digits = 2, shownOurs, shownBase]) =>
    [metric, shownOurs ?? show(ours, digits), shownBase ?? show(base, digits), ratio(ours, base)]);
  return `\n### ${title}\n\n${table(header, cells)}`;
}
