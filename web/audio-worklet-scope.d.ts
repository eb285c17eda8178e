// What an AudioWorkletGlobalScope provides (Web Audio API §1.32); TypeScript ships no lib for it.

declare abstract class AudioWorkletProcessor {
  readonly port: MessagePort;
  constructor(options?: AudioWorkletNodeOptions);
  abstract process(inputs: Float32Array[][], outputs: Float32Array[][], parameters: Record<string, Float32Array>): boolean;
}

declare function registerProcessor(name: string, processorCtor: new (options: AudioWorkletNodeOptions) => AudioWorkletProcessor): void;

/** The rate of the AudioContext the worklet runs in. */
declare const sampleRate: number;
