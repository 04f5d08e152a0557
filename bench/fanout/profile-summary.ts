/**
 * Summarises a V8 .cpuprofile written by `run.ts --cpu-prof DIR`: self time by package or source
 * file, and the hottest functions.
 *
 *   node --import tsx bench/fanout/profile-summary.ts DIR/opsconductor-postgres-….cpuprofile [top]
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

// Piped into `head`: stop quietly when the reader goes away.
process.stdout.on('error', () => process.exit(0));
const [file, topArg] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: profile-summary.ts FILE.cpuprofile [top]\n');
  process.exit(2);
}
const top = Number(topArg ?? 25);
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const selfUs = new Map<number, number>();
profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));

/** Where a frame lives: an npm package, a project file, node itself, or V8 (program, GC, idle). */
function area(url: string, fn: string): string {
  if (!url) {
    return `(${fn || 'anonymous'})`;
  }
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) {
    return pkg[1] as string;
  }
  if (url.startsWith('node:')) {
    return 'node:internal';
  }
  const src = /\/((?:src|bench|test)\/.*)$/.exec(url);
  return src ? (src[1] as string) : url;
}

const areas = new Map<string, number>();
const functions = new Map<string, number>();
for (const [id, us] of selfUs) {
  const node = byId.get(id);
  if (!node) {
    continue;
  }
  const { functionName, url, lineNumber } = node.callFrame;
  const a = area(url, functionName);
  areas.set(a, (areas.get(a) ?? 0) + us);
  const key = `${functionName || '(anonymous)'}  ${a}:${lineNumber + 1}`;
  functions.set(key, (functions.get(key) ?? 0) + us);
}
const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
const idle = [...areas].filter(([a]) => a === '(idle)').reduce((s, [, us]) => s + us, 0);
const print = (title: string, map: Map<string, number>) => {
  process.stdout.write(`\n${title}\n`);
  for (const [k, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    process.stdout.write(`${(us / 1000).toFixed(0).padStart(8)} ms ${((100 * us) / (total - idle)).toFixed(1).padStart(5)}%  ${k}\n`);
  }
};
process.stdout.write(`profile ${((profile.endTime - profile.startTime) / 1e6).toFixed(1)} s, busy ${((total - idle) / 1e6).toFixed(1)} s (percentages of busy time)\n`);
print('self time by area', areas);
print('self time by function', functions);
