// `npm start` needs local secrets; on a fresh clone, start from the documented example so the
// two README commands (npm install, npm start) are all it takes.
import { copyFileSync, existsSync } from "node:fs";

if (!existsSync(".dev.vars")) {
  copyFileSync(".dev.vars.example", ".dev.vars");
  console.log("created .dev.vars from .dev.vars.example (dev secrets only)");
}
