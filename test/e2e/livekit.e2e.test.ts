// The unmodified livekit-client (npm, bundled by esbuild) in headless Debian Chromium joins rooms
// through `wrangler dev`'s /rtc with tokens from livekit-server-sdk, as a LiveKit app would.
// Each page is its own browser with a fresh profile and a fake microphone playing a tone of its
// own pitch, so a page that hears the other's pitch heard the other page, peer to peer.
// The pages are served from another origin than the Worker, as an app's pages would be.
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { AccessToken } from "livekit-server-sdk";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { ConnectOutcome, PageEvent } from "./livekit-page";
import { CHROMIUM_PATH, chromiumArgs, writeToneWav } from "./chromium";

declare module "vitest" {
  export interface ProvidedContext {
    baseUrl: string;
    livekitApiKey: string;
    livekitApiSecret: string;
  }
}

const serverUrl = inject("baseUrl").replace(/^http/, "ws");
const apiKey = inject("livekitApiKey");
const apiSecret = inject("livekitApiSecret");

/** Each party's microphone: a steady sine of this pitch (Hz). */
const TONE = { alice: 440, bob: 1000 } as const;
type Party = keyof typeof TONE;
/** Received audio counts as signal above this RMS (-40 dBFS); silence is 0. */
const SIGNAL_RMS = 0.01;
/** DisconnectReason.JOIN_FAILURE and livekit-client's ConnectionErrorReason.NotAllowed. */
const JOIN_FAILURE = 7;
const NOT_ALLOWED = 0;

let scratch: string;
let pageServer: Server;
let pageUrl: string;
const contexts: BrowserContext[] = [];
/** Paths of the WebSockets each page opened, in order. */
const sockets = new Map<Page, string[]>();
const consoleErrors: string[] = [];

/** A browser of its own for `party`, on a fresh profile, with the page loaded. */
async function openPage(party: Party): Promise<Page> {
  const microphone = join(scratch, `${party}.wav`);
  writeToneWav(microphone, TONE[party]);
  const context = await chromium.launchPersistentContext(mkdtempSync(join(scratch, `${party}-profile-`)), {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: chromiumArgs(microphone),
  });
  contexts.push(context);
  const page = context.pages()[0] ?? await context.newPage();
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(`${party}: ${m.text()}`); });
  sockets.set(page, []);
  page.on("websocket", (ws) => sockets.get(page)!.push(new URL(ws.url()).pathname));
  await page.goto(pageUrl);
  await page.waitForFunction(() => "lk" in window);
  return page;
}

async function tokenFor(identity: string, room: string, ttl: number | string = "10m"): Promise<string> {
  const token = new AccessToken(apiKey, apiSecret, { identity, name: identity.toUpperCase(), ttl });
  token.addGrant({ roomJoin: true, room });
  return token.toJwt();
}

const connect = (page: Page, token: string): Promise<ConnectOutcome> =>
  page.evaluate(([url, t]) => window.lk.connect(url, t), [serverUrl, token] as const);
const eventsOf = (page: Page): Promise<PageEvent[]> => page.evaluate(() => window.lk.events());
const unique = (name: string) => `${name}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

/** Polls `probe` in the page until `done` holds for its result, or fails with the last result. */
async function eventually<T>(probe: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  let value = await probe();
  while (!done(value) && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 200));
    value = await probe();
  }
  if (!done(value)) throw new Error(`gave up waiting; last value ${JSON.stringify(value)}\nconsole errors:\n${consoleErrors.join("\n")}`);
  return value;
}

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), "livekit-e2e-"));
  const bundle = await build({
    entryPoints: [fileURLToPath(new URL("./livekit-page.ts", import.meta.url))],
    bundle: true, format: "esm", platform: "browser", target: "es2022", write: false, logLevel: "warning",
  });
  const script = bundle.outputFiles[0].contents;
  pageServer = createServer((req, res) => {
    if (req.url === "/page.js") {
      res.writeHead(200, { "content-type": "text/javascript" }).end(script);
    } else {
      res.writeHead(200, { "content-type": "text/html" }).end("<!doctype html><title>livekit e2e</title><script type=module src=/page.js></script>");
    }
  });
  await new Promise<void>((resolve) => pageServer.listen(0, "127.0.0.1", resolve));
  pageUrl = `http://127.0.0.1:${(pageServer.address() as AddressInfo).port}/`;
});

afterAll(async () => {
  await Promise.all(contexts.splice(0).map((c) => c.close()));
  await new Promise((resolve) => pageServer?.close(resolve));
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe("two livekit-client pages in one peer-to-peer room", () => {
  const room = unique("lk-e2e");
  const pages = {} as Record<Party, Page>;

  beforeAll(async () => {
    [pages.alice, pages.bob] = await Promise.all([openPage("alice"), openPage("bob")]);
  });

  it("connects both pages with a default new Room() and livekit-server-sdk tokens", async () => {
    const outcomes = await Promise.all([
      connect(pages.alice, await tokenFor("alice", room)),
      connect(pages.bob, await tokenFor("bob", room)),
    ]);
    expect(outcomes.map((o) => o.error ?? "ok")).toEqual(["ok", "ok"]);
  });

  it("lands both unmodified clients on /rtc after their /rtc/v1 attempt fails", async () => {
    expect(sockets.get(pages.alice)).toEqual(["/rtc/v1", "/rtc"]);
    expect(sockets.get(pages.bob)).toEqual(["/rtc/v1", "/rtc"]);
  });

  it("shows each page the other as its remote participant", async () => {
    expect(await pages.alice.evaluate(() => window.lk.remoteIdentities())).toEqual(["bob"]);
    expect(await pages.bob.evaluate(() => window.lk.remoteIdentities())).toEqual(["alice"]);
  });

  it("subscribes each page to the other's published microphone", async () => {
    const published = await Promise.all([pages.alice, pages.bob].map((p) => p.evaluate(() => window.lk.publishMicrophone())));
    expect(published).toEqual([expect.stringMatching(/^TR_/), expect.stringMatching(/^TR_/)]);
    await eventually(() => pages.alice.evaluate(() => window.lk.subscribedMicrophones()), (s) => s.bob === true);
    await eventually(() => pages.bob.evaluate(() => window.lk.subscribedMicrophones()), (s) => s.alice === true);
  });

  it("carries signal on each page's received microphone track: the other page's tone", async () => {
    for (const [party, other] of [["alice", "bob"], ["bob", "alice"]] as const) {
      const heard = await eventually(() => pages[party].evaluate(() => window.lk.receivedSignal(1_000)), (s) => s.rms > SIGNAL_RMS, 20_000);
      // One FFT bin is 48 000 / 2048 ≈ 23 Hz; codecs and resampling keep a tone's pitch.
      expect(Math.abs(heard.hz - TONE[other])).toBeLessThan(50);
    }
  });

  it("delivers a publishData message to the other page, from its sender", async () => {
    await pages.alice.evaluate(() => window.lk.publishText("hello from alice"));
    await pages.bob.evaluate(() => window.lk.publishText("hello from bob"));
    expect(await eventually(() => pages.bob.evaluate(() => window.lk.received()), (r) => r.length > 0))
      .toEqual([{ from: "alice", text: "hello from alice" }]);
    expect(await eventually(() => pages.alice.evaluate(() => window.lk.received()), (r) => r.length > 0))
      .toEqual([{ from: "bob", text: "hello from bob" }]);
  });

  it("refuses a third page: its connect() rejects after a leave", async () => {
    const carol = await openPage("alice");
    const outcome = await connect(carol, await tokenFor("carol", room));
    expect(outcome.ok).toBe(false);
    expect(outcome.error?.message).toContain("leave request");
  });

  it("tells the remaining page when the other leaves", async () => {
    await pages.bob.evaluate(() => window.lk.disconnect());
    const events = await eventually(() => eventsOf(pages.alice), (e) => e.some((x) => x.name === "participantDisconnected"));
    expect(events.filter((e) => e.name === "participantDisconnected").map((e) => e.detail)).toEqual(["bob"]);
    expect(await pages.alice.evaluate(() => window.lk.remoteIdentities())).toEqual([]);
  });
});

describe("livekit-client reconnecting", () => {
  const pages = {} as Record<Party, Page>;
  const hears = (party: Party) =>
    eventually(async () => ({ ...await pages[party].evaluate(() => window.lk.receivedSignal(500)), party, events: await eventsOf(pages[party]) }),
      (s) => s.rms > SIGNAL_RMS, 20_000);

  beforeAll(async () => {
    const room = unique("lk-e2e");
    [pages.alice, pages.bob] = await Promise.all([openPage("alice"), openPage("bob")]);
    const outcomes = await Promise.all([
      connect(pages.alice, await tokenFor("alice", room)),
      connect(pages.bob, await tokenFor("bob", room)),
    ]);
    expect(outcomes.map((o) => o.error ?? "ok")).toEqual(["ok", "ok"]);
    await Promise.all([pages.alice, pages.bob].map((p) => p.evaluate(() => window.lk.publishMicrophone())));
    await Promise.all([hears("alice"), hears("bob")]);
  });

  it("resumes a dropped signalling socket with reconnect=1, unseen by the other page", async () => {
    await pages.alice.evaluate(() => window.lk.simulate("signal-reconnect"));
    await eventually(() => eventsOf(pages.alice), (e) => e.some((x) => x.name === "reconnected"));
    expect(sockets.get(pages.alice)!.at(-1)).toBe("/rtc");
    expect((await eventsOf(pages.bob)).map((e) => e.name)).not.toContain("participantDisconnected");
    await hears("bob");
  });

  // The restarted pages hear each other only if TrackSubscribed fired for the new tracks: the
  // page attaches its analyser on that event (see LIVEKIT_RESTART_SETTLE_MS).
  it("re-pairs both pages after one restarts with new peer connections; each gets TrackSubscribed and hears the other", async () => {
    await pages.alice.evaluate(() => window.lk.simulate("full-reconnect"));
    for (const party of ["alice", "bob"] as const) {
      await eventually(() => eventsOf(pages[party]), (e) => e.filter((x) => x.name === "reconnected").length >= (party === "alice" ? 2 : 1), 30_000);
    }
    expect(await pages.bob.evaluate(() => window.lk.remoteIdentities())).toEqual(["alice"]);
    await eventually(() => pages.bob.evaluate(() => window.lk.subscribedMicrophones()), (s) => s.alice === true);
    await eventually(() => pages.alice.evaluate(() => window.lk.subscribedMicrophones()), (s) => s.bob === true);
    await Promise.all([hears("alice"), hears("bob")]);
  });
});

describe("livekit-client refused or left alone", () => {
  it("rejects connect() with NotAllowed and status 401 for an expired token", async () => {
    const page = await openPage("alice");
    const outcome = await connect(page, await tokenFor("alice", unique("lk-e2e"), -60));
    expect(outcome.error).toMatchObject({ reason: NOT_ALLOWED, status: 401 });
  });

  it("disconnects a participant alone with JOIN_FAILURE when nobody joins, and its connect() rejects", async () => {
    const page = await openPage("alice");
    const outcome = await connect(page, await tokenFor("alice", unique("lk-e2e")));
    expect(outcome.ok).toBe(false);
    const events = await eventsOf(page);
    expect(events, JSON.stringify({ outcome, events })).toContainEqual(expect.objectContaining({ name: "disconnected", detail: JOIN_FAILURE }));
  });
});
