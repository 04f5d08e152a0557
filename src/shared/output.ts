/** Step output handling: secret masking, size caps with a visible marker, `OC_OUTPUT` capture. */

/** Appended to output that hit the cap. */
export const TRUNCATION_MARKER = '\n[output truncated]\n';

/** Shortest value masked (shorter "secrets" would turn ordinary text into stars). */
const MIN_SECRET_LENGTH = 3;

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
