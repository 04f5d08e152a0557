/** Step output handling: secret masking, size caps with a visible marker, `OC_OUTPUT` capture. */

/** Appended to output that hit the cap. */
export const TRUNCATION_MARKER = '\n[output truncated]\n';

/** Shortest value masked (shorter "secrets" would turn ordinary text into stars). */
const MIN_SECRET_LENGTH = 3;

/** PostgreSQL text cannot hold NUL: stored and streamed output shows U+FFFD in its place. */
export function storableText(text: string): string {
  return text.includes('\0') ? text.replaceAll('\0', '\uFFFD') : text;
}

/** Returns a function replacing every occurrence of any secret with `***`. */
export function createMasker(secrets: readonly string[]): (text: string) => string {
  const list = [...new Set(secrets.filter((s) => s.length >= MIN_SECRET_LENGTH))].sort((a, b) => b.length - a.length);
  if (list.length === 0) {
    return (text) => text;
  }
  return (text) => list.reduce((acc, secret) => acc.split(secret).join('***'), text);
}

/** `key=value` pairs from lines `OC_OUTPUT key=value` (keys `[A-Za-z_][A-Za-z0-9_]*`). */
export function parseOutputs(stdout: string): Record<string, string> {
  const outputs: Record<string, string> = {};
  for (const line of stdout.split(/\r?\n/)) {
    const match = /^OC_OUTPUT ([A-Za-z_][A-Za-z0-9_]{0,63})=(.*)$/.exec(line);
    if (match) {
      outputs[match[1] as string] = match[2] as string;
    }
  }
  return outputs;
}

/** Keeps at most `maxBytes` of `text` (UTF-8), adding the marker when cut. */
export function capOutput(text: string, maxBytes: number): { text: string; truncated: boolean } {
  const bytes = Buffer.byteLength(text);
  if (bytes <= maxBytes) {
    return { text, truncated: false };
  }
  return { text: Buffer.from(text).subarray(0, maxBytes).toString('utf8') + TRUNCATION_MARKER, truncated: true };
}

/** Text of live output released so far must not end inside a secret: hold back this much. */
const LIVE_CHUNK = 4096;

/**
 * Live output of one step: masked, capped like stored output (with the marker), and released at
 * line ends (or in large pieces minus a tail as long as the longest secret), so a secret split
 * across network chunks is never sent in two halves.
 */
export function createLiveOutput(options: {
  mask: (text: string) => string;
  /** Length of the longest secret (the tail held back when a long line is released early). */
  longestSecret: () => number;
  maxBytes: number;
  emit: (stream: 'stdout' | 'stderr', text: string) => void;
}) {
  const streams = { stdout: { pending: '', sent: 0, capped: false }, stderr: { pending: '', sent: 0, capped: false } };

  function release(name: 'stdout' | 'stderr', final: boolean): void {
    const s = streams[name];
    const lineEnd = s.pending.lastIndexOf('\n') + 1;
    const early = s.pending.length > LIVE_CHUNK ? s.pending.length - Math.max(0, options.longestSecret() - 1) : 0;
    const cut = final ? s.pending.length : Math.max(lineEnd, early);
    if (cut <= 0 || s.capped) {
      s.pending = s.capped ? '' : s.pending;
      return;
    }
    let text = options.mask(s.pending.slice(0, cut));
    s.pending = s.pending.slice(cut);
    const budget = options.maxBytes - s.sent;
    if (Buffer.byteLength(text) > budget) {
      text = Buffer.from(text).subarray(0, Math.max(0, budget)).toString('utf8') + TRUNCATION_MARKER;
      s.capped = true;
    }
    s.sent += Buffer.byteLength(text);
    options.emit(name, text);
  }

  return {
    push(name: 'stdout' | 'stderr', chunk: string): void {
      if (!streams[name].capped) {
        streams[name].pending += chunk;
        release(name, false);
      }
    },
    /** Releases what is held (call when the step ends). */
    finish(): void {
      release('stdout', true);
      release('stderr', true);
    },
  };
}

/** Collects a byte stream, keeping at most `max` bytes (the rest is counted, not kept). */
export function cappedBytes(max: number) {
  const chunks: Buffer[] = [];
  let size = 0;
  return {
    push(chunk: Buffer) {
      if (size < max) {
        chunks.push(chunk.subarray(0, max - size));
        size += chunk.length;
      }
    },
    text: () => Buffer.concat(chunks).toString('utf8'),
  };
}
