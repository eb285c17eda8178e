// `npm start`: the local secrets (dev-vars.mjs), then `wrangler dev`, stopped as a whole.
//
// npm runs a script through `sh -c`; on SIGTERM npm signals that shell, which ends without passing
// the signal on, and wrangler and its workerd processes kept running (holding port 8787). So
// wrangler runs here in a process group of its own, and a SIGINT, SIGTERM or SIGHUP that reaches
// this process, or the end of its parent, stops that whole group; this process exits when wrangler
// does, with its status.
import { spawn } from "node:child_process";
import { constants } from "node:os";
import { join } from "node:path";
import "./dev-vars.mjs";

/** How long wrangler gets to stop its workerd processes after the signal before they are killed. */
const STOP_GRACE_MS = 5_000;
/** How often the parent is checked: stopping `npm start` frees the port within about this long. */
const PARENT_POLL_MS = 250;

const wrangler = join(import.meta.dirname, "../node_modules/wrangler/bin/wrangler.js");
// A process group of its own (detached) is not the terminal's foreground group, so wrangler must
// not read the terminal (a background read stops it): with stdin ignored it runs without its
// hotkeys, and Ctrl-C reaches it through this process.
const child = spawn(process.execPath, [wrangler, "dev", ...process.argv.slice(2)], {
  stdio: ["ignore", "inherit", "inherit"],
  detached: true,
});

function signalGroup(signal) {
  try {
    process.kill(-child.pid, signal);
  } catch {
    // The group is gone already.
  }
}

let stopping = false;
function stop(signal) {
  if (stopping) return signalGroup("SIGKILL"); // a second Ctrl-C: stop now
  stopping = true;
  signalGroup(signal);
  setTimeout(() => signalGroup("SIGKILL"), STOP_GRACE_MS).unref();
}
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(signal, () => stop(signal));

// npm's SIGTERM reaches only the `sh -c` it runs this under, which exits without passing it on:
// this process sees that as a new parent, and stops wrangler as if the signal had come.
const parent = process.ppid;
setInterval(() => { if (!stopping && process.ppid !== parent) stop("SIGTERM"); }, PARENT_POLL_MS).unref();

child.on("exit", (code, signal) => {
  // Whatever wrangler left behind in its group (a workerd it did not stop) goes with it.
  signalGroup("SIGKILL");
  process.exit(code ?? 128 + (constants.signals[signal] ?? 0));
});
