// Entry of a scan thread (scan-threads.ts): registers tsx in this thread, then runs the slice.
import { register } from 'tsx/esm/api';

register();
await import('./scan-worker.ts');
