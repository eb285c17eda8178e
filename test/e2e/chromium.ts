// Debian's Chromium for the browser end-to-end tests: where it is, the flags it needs on this
// machine, and the tone its fake microphone plays.
import { encodeWaveFromFloat32Channels } from "@echogarden/wave-codec";
import { writeFileSync } from "node:fs";

/** `.ci/run` installs Debian's package, which puts the browser here. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/**
 * Headless Chromium as root (no sandbox) on a machine whose network is closed (no background
 * networking, updates or sync, which would otherwise retry refused connections at every start),
 * with fake media devices whose microphone loops `microphoneWav`, and audio allowed to start
 * without a click (the tests' analysers run unprompted).
 */
export function chromiumArgs(microphoneWav: string): string[] {
  return [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream", `--use-file-for-fake-audio-capture=${microphoneWav}`,
    "--autoplay-policy=no-user-gesture-required",
  ];
}

/** Writes 4 s of a sine at `hz` (48 kHz mono 16-bit PCM, amplitude 0.4) to `path`: each page's
 * microphone plays its own pitch, so a test can tell whose audio arrived. */
export function writeToneWav(path: string, hz: number): void {
  const rate = 48_000;
  const samples = Float32Array.from({ length: rate * 4 }, (_, i) => 0.4 * Math.sin((2 * Math.PI * hz * i) / rate));
  writeFileSync(path, encodeWaveFromFloat32Channels([samples], rate, 16));
}
