/**
 * nmap as the reference scanner for the scan benchmark: `nmap -sT -T4 -Pn -n --open -oX - -p PORTS
 * RANGE` (a TCP connect scan, like OpsConductor's, so no root and no raw packets), and the open
 * host:port pairs read from its XML report. The parser is the benchmark's own, kept apart from
 * OpsConductor's code on purpose: the reference should not share a bug with what it checks.
 */
import { spawn, spawnSync } from 'node:child_process';

import { XMLParser } from 'fast-xml-parser';

import type { OpenPort } from '../../src/discovery/scanner.ts';

export const NMAP_INSTALL_HINT = 'apt-get install -y nmap';

/** nmap's version (`7.93`), or undefined when it is not installed. */
export function nmapVersion(): string | undefined {
  const r = spawnSync('nmap', ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    return undefined;
  }
  return /Nmap version (\S+)/.exec(r.stdout)?.[1] ?? r.stdout.split('\n')[0]?.trim();
}

/** A port list in nmap's `-p` syntax, consecutive ports as ranges: [1, 2, 3, 40000] → `1-3,40000`. */
export function portSpec(ports: number[]): string {
  const sorted = [...new Set(ports)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && (sorted[j + 1] as number) === (sorted[j] as number) + 1) {
      j++;
    }
    parts.push(i === j ? String(sorted[i]) : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/** The arguments of one nmap run: connect scan, T4 timing, no host discovery, no DNS, open ports only, XML on stdout. */
export function nmapArgs(ports: number[], range: string): string[] {
  return ['-sT', '-T4', '-Pn', '-n', '--open', '-oX', '-', '-p', portSpec(ports), range];
}

const asArray = <T>(x: T | T[] | undefined): T[] => (x === undefined ? [] : Array.isArray(x) ? x : [x]);

interface XmlPort {
  protocol?: string;
  portid?: string | number;
  state?: { state?: string };
}
interface XmlHost {
  address?: Array<{ addr?: string; addrtype?: string }>;
  ports?: { port?: XmlPort[] };
}
interface XmlReport {
  nmaprun?: { host?: XmlHost[]; runstats?: { finished?: { elapsed?: string | number } } };
}

/** Open TCP pairs in an nmap XML report (`-oX`), and nmap's own elapsed time in seconds. */
export function parseNmapReport(xml: string): { open: OpenPort[]; elapsedS: number | undefined } {
  const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '', isArray: (name) => ['host', 'address', 'port'].includes(name) });
  const report = parser.parse(xml) as XmlReport;
  const open: OpenPort[] = [];
  for (const host of asArray(report.nmaprun?.host)) {
    const address = host.address?.find((a) => a.addrtype === 'ipv4' || a.addrtype === 'ipv6')?.addr;
    for (const port of asArray(host.ports?.port)) {
      if (address && port.protocol === 'tcp' && port.state?.state === 'open') {
        open.push({ host: address, port: Number(port.portid) });
      }
    }
  }
  const finished = report.nmaprun?.runstats?.finished;
  return { open, elapsedS: finished?.elapsed === undefined ? undefined : Number(finished.elapsed) };
}

/** One finished nmap run. */
export interface NmapRun {
  wallMs: number;
  open: OpenPort[];
  /** nmap's own figure from the report (excludes its start-up). */
  elapsedS: number | undefined;
  /** The XML report as nmap wrote it. */
  xml: string;
}

/** Runs nmap with `args`, timed from spawn to exit; killed when `signal` aborts. Rejects on a non-zero exit. */
export function runNmap(args: string[], signal: AbortSignal): Promise<NmapRun> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn('nmap', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    const kill = () => child.kill('SIGKILL');
    signal.addEventListener('abort', kill, { once: true });
    child.once('error', (e) => {
      signal.removeEventListener('abort', kill);
      reject(e);
    });
    child.once('close', (code, killedBy) => {
      const wallMs = performance.now() - started;
      signal.removeEventListener('abort', kill);
      const stderr = Buffer.concat(err).toString('utf8').trim();
      if (code !== 0) {
        reject(new Error(`nmap ${args.join(' ')} exited with ${code ?? killedBy}${stderr ? `: ${stderr}` : ''}`));
        return;
      }
      const xml = Buffer.concat(out).toString('utf8');
      resolve({ wallMs, ...parseNmapReport(xml), xml });
    });
  });
}
