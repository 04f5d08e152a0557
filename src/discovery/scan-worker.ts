/** A scan thread: scans its slice of the index space (scan-threads.ts), reporting progress; stops on 'abort'. */
import { parentPort, workerData } from 'node:worker_threads';

import type { SliceMessage, SliceTask } from './scan-threads.ts';
import { scanSlice } from './scan-slice.ts';

const task = workerData as SliceTask;
const stop = new AbortController();
const port = parentPort as NonNullable<typeof parentPort>;
port.on('message', (message) => message === 'abort' && stop.abort());
const post = (message: SliceMessage) => port.postMessage(message);

try {
  const result = await scanSlice(task.hosts, task.ports, task.from, task.to, { ...task.options, signal: stop.signal, onProgress: (probed) => post({ type: 'progress', probed }) });
  post({ type: 'done', result });
} catch (e) {
  post({ type: 'error', message: (e as Error).message });
}
port.close();
