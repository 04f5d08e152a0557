/** Creates the process logger: pino JSON with secrets redacted (see shared/redaction.ts). */
import { pino, type DestinationStream, type Logger } from 'pino';

import { logRedactPaths } from './shared/redaction.ts';

export type { Logger } from 'pino';

/** Builds a logger at `level`, writing to `destination` (stdout by default). */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'opsconductor' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: logRedactPaths(), censor: '***' },
    },
    destination,
  );
}
