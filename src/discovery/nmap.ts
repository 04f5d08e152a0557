/**
 * Optional nmap backend for discovery (issue #8): a TCP connect scan (`-sT`, no root needed) with
 * an XML report on stdout, of which only open TCP ports are kept. Hosts must be addresses already
 * checked against the allow-list (src/discovery/ranges.ts): they go to nmap on stdin (`-iL -`, no
 * shell, no argument-length limit), and `-n` keeps nmap from sending reverse DNS queries.
 * No database, no domain types.
 */
import { execFile, spawn } from 'node:child_process';
import { isIP } from 'node:net';

import { XMLParser } from 'fast-xml-parser';

import { compareAddresses } from './ranges.ts';

/** A port nmap reported open. */
export interface OpenPort {
  host: string;
  port: number;
  /** nmap's name for the port from its services table (`ssh` for 22), not from the banner; null when it has none. */
  nmapService: string | null;
}

/** How an nmap scan runs. */
export interface NmapOptions {
  /** Kills nmap; the scan then resolves with the open ports of the hosts nmap had finished. */
  signal?: AbortSignal;
  /** Timing template: T3 is nmap's default, T4 suits fast, reliable networks. @defaultValue 'T3' */
  timing?: 'T3' | 'T4';
  /** nmap gives up on a host after this long (`--host-timeout`), in ms. @defaultValue 300000 */
  hostTimeoutMs?: number;
}

const NOT_INSTALLED = 'nmap is not installed (no nmap on PATH): install it (apt-get install nmap) or use the built-in scanner';

/** Whether `nmap --version` runs. */
export async function nmapAvailable(): Promise<boolean> {
  return new Promise((resolve) => {
    execFile('nmap', ['--version'], { timeout: 10_000 }, (error) => resolve(error === null));
  });
}

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseTagValue: false,
  parseAttributeValue: false,
  isArray: (name) => ['host', 'address', 'port'].includes(name),
});

interface NmapHost {
  address?: Array<{ addr?: string; addrtype?: string }>;
  ports?: { port?: Array<{ protocol?: string; portid?: string; state?: { state?: string }; service?: { name?: string } }> };
}

/**
 * The open TCP ports in an nmap XML report (`-oX`), in address then port order. Closed, filtered and
 * `open|filtered` ports are left out. Throws when the text is not well-formed XML with an `nmaprun` root.
 */
export function parseNmapXml(xml: string): OpenPort[] {
  let doc: { nmaprun?: { host?: NmapHost[] } | '' };
  try {
    doc = parser.parse(xml, true) as typeof doc;
  } catch (e) {
    throw new Error(`nmap output is not well-formed XML: ${(e as Error).message}`, { cause: e });
  }
  if (doc.nmaprun === undefined) {
    throw new Error('nmap output has no <nmaprun> element');
  }
  const open: OpenPort[] = [];
  for (const host of (doc.nmaprun === '' ? undefined : doc.nmaprun.host) ?? []) {
    const address = host.address?.find((a) => a.addrtype === 'ipv4' || a.addrtype === 'ipv6')?.addr;
    for (const port of host.ports?.port ?? []) {
      const portid = Number(port.portid);
      if (address && port.protocol === 'tcp' && port.state?.state === 'open' && Number.isInteger(portid)) {
        const name = port.service?.name;
        open.push({ host: address, port: portid, nmapService: name && name !== 'unknown' ? name : null });
      }
    }
  }
  return open.sort((a, b) => compareAddresses(a.host, b.host) || a.port - b.port);
}

/** The complete `<host>` elements of a report cut short (nmap writes each one when it finishes the host). */
function finishedHosts(xml: string): OpenPort[] {
  const hosts = xml.match(/<host[\s>][\s\S]*?<\/host>/g) ?? [];
  return hosts.length === 0 ? [] : parseNmapXml(`<nmaprun>${hosts.join('')}</nmaprun>`);
}

/** Runs one nmap over hosts of one family; resolves with its report (or what it had written when aborted). */
function runNmap(args: string[], hosts: string[], signal: AbortSignal | undefined): Promise<OpenPort[]> {
  return new Promise((resolve, reject) => {
    const child = spawn('nmap', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const [stdout, stderr]: [Buffer[], Buffer[]] = [[], []];
    const kill = () => child.kill('SIGKILL');
    signal?.addEventListener('abort', kill, { once: true });
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    // nmap may exit before reading all of stdin (a bad option, a kill): that EPIPE is reported by the exit below.
    child.stdin.on('error', () => {});
    child.stdin.end(`${hosts.join('\n')}\n`);
    child.on('error', (e: NodeJS.ErrnoException) => {
      signal?.removeEventListener('abort', kill);
      reject(e.code === 'ENOENT' ? new Error(NOT_INSTALLED, { cause: e }) : new Error(`nmap could not be started: ${e.message}`, { cause: e }));
    });
    child.on('close', (code) => {
      signal?.removeEventListener('abort', kill);
      const xml = Buffer.concat(stdout).toString('utf8');
      try {
        if (signal?.aborted) {
          resolve(finishedHosts(xml));
        } else if (code !== 0) {
          const message = Buffer.concat(stderr).toString('utf8').trim().split('\n').slice(-5).join(' ');
          reject(new Error(`nmap exited with code ${code}: ${message || 'no message'}`));
        } else {
          resolve(parseNmapXml(xml));
        }
      } catch (e) {
        reject(e as Error);
      }
    });
  });
}

/** Linux caps one argument at 128 KiB: port lists longer than this are split over several runs. */
const MAX_PORT_ARG = 60_000;

/** Distinct ports as nmap `-p` arguments: runs written `a-b`, each argument at most MAX_PORT_ARG long. */
function portArguments(ports: number[]): string[] {
  const sorted = [...new Set(ports)].sort((a, b) => a - b);
  const runs: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === (sorted[j] ?? 0) + 1) {
      j++;
    }
    runs.push(i === j ? String(sorted[i]) : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  const args: string[] = [];
  for (const run of runs) {
    const last = args.length - 1;
    if (last >= 0 && (args[last]?.length ?? 0) + run.length + 1 <= MAX_PORT_ARG) {
      args[last] += `,${run}`;
    } else {
      args.push(run);
    }
  }
  return args;
}

/**
 * Scans `hosts` (IPv4/IPv6 literals, already allowed) on TCP `ports` with nmap:
 * `nmap -sT -Pn -n --open -T<timing> --host-timeout … -oX - -p <ports> [-6] -iL -`, one run per
 * address family (nmap scans one family per run). -Pn because ping may be filtered (and loopback
 * needs none). On abort nmap is killed and the ports found on the hosts it had finished are returned.
 * Results are in address then port order. Throws `Error('nmap is not installed …')` when nmap is
 * missing, and TypeError/RangeError for a host that is not an address or a port outside 1–65535.
 */
export async function nmapOpenPorts(hosts: string[], ports: number[], options: NmapOptions = {}): Promise<OpenPort[]> {
  const bad = hosts.find((h) => isIP(h) === 0 || h.includes('%'));
  if (bad !== undefined) {
    throw new TypeError(`nmap targets must be IP addresses, not "${bad}"`);
  }
  const badPort = ports.find((p) => !Number.isInteger(p) || p < 1 || p > 65_535);
  if (badPort !== undefined) {
    throw new RangeError(`ports must be integers from 1 to 65535, not ${badPort}`);
  }
  const hostTimeout = `${Math.max(1, Math.ceil((options.hostTimeoutMs ?? 300_000) / 1000))}s`;
  const common = ['-sT', '-Pn', '-n', '--open', `-${options.timing ?? 'T3'}`, '--host-timeout', hostTimeout, '-oX', '-'];
  const open: OpenPort[] = [];
  for (const family of [4, 6] as const) {
    const targets = [...new Set(hosts.filter((h) => isIP(h) === family))];
    for (const portArg of targets.length > 0 ? portArguments(ports) : []) {
      if (!options.signal?.aborted) {
        open.push(...(await runNmap([...common, '-p', portArg, ...(family === 6 ? ['-6'] : []), '-iL', '-'], targets, options.signal)));
      }
    }
  }
  return open.sort((a, b) => compareAddresses(a.host, b.host) || a.port - b.port);
}
