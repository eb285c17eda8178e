// The demo page at `/`, driven in headless Chromium against `wrangler dev`: two pages, each in
// its own browser with its own fake microphone, call each other for real. In WebRTC mode the
// caller signals through Viam's SignalingService and the callee through VoiceService over
// WebSocket; in relay mode PCM goes through the seed-003 audio relay. Each browser's microphone
// plays a tone of its own pitch, so a page that hears the other's pitch heard the other page.
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { CHROMIUM_PATH, chromiumArgs, writeToneWav } from "./chromium";

declare module "vitest" {
  export interface ProvidedContext {
    baseUrl: string;
  }
}

const baseUrl = inject("baseUrl");
const ARTIFACTS = "test/artifacts";
/** Each party's microphone: a steady sine of this pitch (Hz). */
const TONE = { caller: 440, callee: 1000 } as const;
/** Remote audio counts as signal above this RMS (-40 dBFS); silence is 0, the tones arrive near 0.03. */
const SIGNAL_RMS = 0.01;
/** …for at least this long without a break. */
const SIGNAL_MS = 1_000;

type Party = keyof typeof TONE;

let scratch: string;
const browsers = {} as Record<Party, Browser>;
const contexts: BrowserContext[] = [];
const pageErrors: string[] = [];

function launch(party: Party): Promise<Browser> {
  const microphone = join(scratch, `${party}.wav`);
  writeToneWav(microphone, TONE[party]);
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    // Playwright gives each launch a fresh, empty profile directory itself.
    args: chromiumArgs(microphone),
  });
}

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), "demo-page-e2e-"));
  mkdirSync(ARTIFACTS, { recursive: true });
  [browsers.caller, browsers.callee] = await Promise.all([launch("caller"), launch("callee")]);
});

afterAll(async () => {
  await Promise.all(Object.values(browsers).map((b) => b?.close()));
  rmSync(scratch, { recursive: true, force: true });
});

afterEach(async () => {
  await Promise.all(contexts.splice(0).map((c) => c.close()));
  expect(pageErrors.splice(0)).toEqual([]);
});

const unique = (name: string) => `${name}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

async function openPage(party: Party, query: Record<string, string>): Promise<Page> {
  const context = await browsers[party].newContext({ viewport: { width: 1280, height: 900 } });
  contexts.push(context);
  const page = await context.newPage();
  page.on("pageerror", (err) => pageErrors.push(`${party}: ${err.message}`));
  await page.goto(`${baseUrl}/?${new URLSearchParams(query)}`);
  return page;
}

async function goOnline(page: Page): Promise<void> {
  await page.click("#online");
  await page.waitForSelector("#presence[data-state=online]", { timeout: 15_000 });
}

async function errorOf(page: Page): Promise<string> {
  return (await page.locator("#error").isVisible()) ? (await page.textContent("#error")) ?? "" : "";
}

/** The history as the page shows it: `status:side` per entry. */
async function historyOf(page: Page): Promise<string[]> {
  return page.$$eval("#history li", (items) => items.map((li) => `${li.dataset.status}:${li.dataset.side ?? ""}`));
}

/**
 * Measures what the page plays as the remote party (the <audio> element's stream) with an
 * AnalyserNode of the test's own: waits until the RMS stays above SIGNAL_RMS for SIGNAL_MS, then
 * reports how long it did and the dominant frequency over that stretch.
 */
function remoteSignal(page: Page): Promise<{ loudMs: number; hz: number; peakRms: number }> {
  return page.evaluate(async ({ threshold, needMs }) => {
    const audio = document.getElementById("remote-audio") as HTMLAudioElement;
    const stream = audio.srcObject as MediaStream | null;
    if (!stream) throw new Error("the page plays no remote stream");
    const ctx = new AudioContext();
    await ctx.resume();
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 8192;
    ctx.createMediaStreamSource(stream).connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    const spectrum = new Float32Array(analyser.frequencyBinCount);
    const loudness = new Float32Array(analyser.frequencyBinCount);
    let loudSince: number | null = null;
    let peakRms = 0;
    const until = performance.now() + 15_000;
    try {
      while (performance.now() < until) {
        await new Promise((r) => setTimeout(r, 50));
        analyser.getFloatTimeDomainData(samples);
        const rms = Math.sqrt(samples.reduce((sum, s) => sum + s * s, 0) / samples.length);
        peakRms = Math.max(peakRms, rms);
        if (rms < threshold) {
          loudSince = null;
          loudness.fill(0);
          continue;
        }
        loudSince ??= performance.now();
        analyser.getFloatFrequencyData(spectrum);
        for (let i = 0; i < spectrum.length; i++) loudness[i] += 10 ** (spectrum[i] / 20);
        const loudMs = performance.now() - loudSince;
        if (loudMs >= needMs) {
          const peak = loudness.indexOf(Math.max(...loudness));
          return { loudMs, hz: (peak * ctx.sampleRate) / analyser.fftSize, peakRms };
        }
      }
      return { loudMs: 0, hz: 0, peakRms };
    } finally {
      await ctx.close();
    }
  }, { threshold: SIGNAL_RMS, needMs: SIGNAL_MS });
}

async function expectToHear(page: Page, pitch: number): Promise<void> {
  const heard = await remoteSignal(page);
  expect(heard.loudMs).toBeGreaterThanOrEqual(SIGNAL_MS);
  // One FFT bin is 48 000 / 8192 ≈ 6 Hz; codecs and resampling keep a tone's pitch.
  expect(Math.abs(heard.hz - pitch)).toBeLessThan(25);
}

async function waitIdle(page: Page): Promise<void> {
  await page.waitForSelector("#call-state[data-state=idle]", { timeout: 10_000 });
}

/** Puts the callee online, then the caller, and places the call; resolves once both are connected. */
async function connectCall(mode: "webrtc" | "relay") {
  const room = unique("room");
  const names = { caller: unique("alice"), callee: unique("bob") };
  const callee = await openPage("callee", { identity: names.callee, mode, room });
  const caller = await openPage("caller", { identity: names.caller, mode, room, call: names.callee });
  await goOnline(callee);
  await goOnline(caller);
  await caller.click("#call");
  for (const page of [caller, callee]) {
    await page.waitForSelector("#call-state[data-state=connected]", { timeout: 20_000 })
      .catch(async (err: Error) => { throw new Error(`${err.message}\npage error: ${await errorOf(page)}`); });
  }
  return { caller, callee, names };
}

describe("demo page, WebRTC mode", () => {
  it("connects a Viam caller page to a Voice callee page; each hears the other; the caller's hang-up idles both", async () => {
    const { caller, callee, names } = await connectCall("webrtc");
    await Promise.all([expectToHear(callee, TONE.caller), expectToHear(caller, TONE.callee)]);

    // The history shows live, on both pages: the exchange completes while the call goes on.
    for (const page of [caller, callee]) await page.waitForSelector("#history li[data-status=exchanged]", { timeout: 10_000 });
    expect(await callee.textContent("#call-state")).toContain(names.caller);
    expect(Number(await caller.getAttribute("#rtt", "data-ms"))).toBeGreaterThanOrEqual(0);
    await caller.screenshot({ path: `${ARTIFACTS}/demo-webrtc-caller.png`, fullPage: true });
    await callee.screenshot({ path: `${ARTIFACTS}/demo-webrtc-callee.png`, fullPage: true });

    await caller.click("#hangup");
    await Promise.all([waitIdle(caller), waitIdle(callee)]);
    expect(await callee.textContent("#call-note")).toBe(`${names.caller} hung up.`);
    for (const page of [caller, callee]) {
      await page.waitForSelector("#history li[data-status=hung_up]");
      const history = await historyOf(page);
      expect(history.slice(0, 3)).toEqual(["offered:caller", "claimed:callee", "answered:callee"]);
      // Each side's "no more candidates" arrives when its own ICE gathering ends: either order.
      expect(new Set(history.slice(3, 5))).toEqual(new Set(["caller_done:caller", "callee_done:callee"]));
      expect(history.slice(5)).toEqual(["exchanged:", "hung_up:caller"]);
      expect(await errorOf(page)).toBe("");
    }
  });

  it("ends the call on both pages when the callee hangs up, and the callee takes the next call", async () => {
    const { caller, callee, names } = await connectCall("webrtc");
    await callee.click("#hangup");
    await Promise.all([waitIdle(caller), waitIdle(callee)]);
    expect(await caller.textContent("#call-note")).toBe(`${names.callee} hung up.`);
    await caller.waitForSelector("#history li[data-status=hung_up][data-side=callee]");

    // Back online on its own: a second call reaches it.
    await caller.click("#call");
    for (const page of [caller, callee]) await page.waitForSelector("#call-state[data-state=connected]", { timeout: 20_000 });
    await caller.click("#hangup");
    await Promise.all([waitIdle(caller), waitIdle(callee)]);
  });

  it("says in words that the identity called is not online", async () => {
    const caller = await openPage("caller", { identity: unique("alice"), call: unique("nobody") });
    await goOnline(caller);
    await caller.click("#call");
    await caller.waitForSelector("#error", { state: "visible" });
    expect(await errorOf(caller)).toMatch(/^nobody-\S+ is not online\.$/);
    await waitIdle(caller);
  });
});

describe("demo page, relay mode", () => {
  it("pairs two pages through the audio relay; each hears the other; the caller's hang-up idles both", async () => {
    const { caller, callee, names } = await connectCall("relay");
    await Promise.all([expectToHear(callee, TONE.caller), expectToHear(caller, TONE.callee)]);
    expect(await callee.textContent("#call-state")).toContain(names.caller);
    // Relay mode measures the keep-alive round trip to the relay.
    await caller.waitForSelector("#rtt[data-ms]:not([data-ms=''])", { timeout: 5_000 });
    await caller.screenshot({ path: `${ARTIFACTS}/demo-relay-caller.png`, fullPage: true });
    await callee.screenshot({ path: `${ARTIFACTS}/demo-relay-callee.png`, fullPage: true });

    await caller.click("#hangup");
    await Promise.all([waitIdle(caller), waitIdle(callee)]);
    expect(await callee.textContent("#call-note")).toBe(`${names.caller} hung up.`);
    for (const page of [caller, callee]) {
      expect(await historyOf(page)).toEqual(["offered:caller", "accepted:callee", "hung_up:caller"]);
      expect(await errorOf(page)).toBe("");
    }
  });

  it("says in words that the identity called is not in the relay room", async () => {
    const caller = await openPage("caller", { identity: unique("alice"), mode: "relay", room: unique("room"), call: unique("nobody") });
    await goOnline(caller);
    await caller.click("#call");
    await caller.waitForSelector("#error", { state: "visible" });
    expect(await errorOf(caller)).toMatch(/^nobody-\S+ is not online in this relay room\.$/);
    await waitIdle(caller);
  });
});
