/** Captures log lines in memory so tests can assert what was (and was not) logged. */
import { Writable } from 'node:stream';

/** The captured lines and the stream pino writes to. */
export interface LogCapture {
  stream: Writable;
  lines: string[];
  /** Everything logged so far, as one string. */
  text(): string;
}

/** Creates an empty capture. */
export function createLogCapture(): LogCapture {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      callback();
    },
  });
  return { stream, lines, text: () => lines.join('\n') };
}
