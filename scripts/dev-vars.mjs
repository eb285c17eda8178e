// `npm start` needs local secrets. On a fresh clone, start from the documented example; on an
// older clone, add the settings the example gained since (existing values are never changed), so
// the two README commands (npm install, npm start) are all it takes.
import { appendFileSync, copyFileSync, existsSync, readFileSync } from "node:fs";

const settings = (text) => new Map(text.split("\n")
  .map((line) => /^([A-Z0-9_]+)=/.exec(line))
  .filter(Boolean)
  .map((m) => [m[1], m.input]));

if (!existsSync(".dev.vars")) {
  copyFileSync(".dev.vars.example", ".dev.vars");
  console.log("created .dev.vars from .dev.vars.example (dev secrets only)");
} else {
  const have = settings(readFileSync(".dev.vars", "utf8"));
  const missing = [...settings(readFileSync(".dev.vars.example", "utf8"))].filter(([name]) => !have.has(name));
  if (missing.length) {
    appendFileSync(".dev.vars", `\n${missing.map(([, line]) => line).join("\n")}\n`);
    console.log(`added ${missing.map(([name]) => name).join(", ")} to .dev.vars from .dev.vars.example`);
  }
}
