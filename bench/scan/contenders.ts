/**
 * The contenders of the scan benchmark, each finding the open host:port pairs of one pass:
 * OpsConductor's scanner in this process (then, timed apart, its service identification on what it
 * found), a bare `net.connect` loop as the floor under it, and nmap as a child process.
 */
import { connect } from 'node:net';

import { identifyHosts, type IdentifyOptions } from '../../src/discovery/identify.ts';
import { parseNmapXml } from '../../src/discovery/nmap.ts';
import { findOpenPorts, type OpenPort, type ScanOptions } from '../../src/discovery/scanner.ts';
import { reapedChildrenMs } from '../fanout/cpu.ts';
import { nmapArgs, runNmap } from './nmap.ts';

/** One pass of the benchmark: the same range and ports for every contender. */
export interface Pass {
  name: 'default' | 'wide';
  /** What nmap is given (it probes the network and broadcast addresses too). */
  range: string;
  /** What OpsConductor and the floor are given: the range's hosts as a discovery job parses them (.1–.254). */
  hosts: string[];
  ports: number[];
}

/** What one run of a contender reports. */
export interface ScanRun {
  wallMs: number;
  /** CPU of the scan: this process's for in-process contenders, the child's for nmap. */
  cpuMs: number;
  open: OpenPort[];
  extra?: Record<string, unknown>;
}

/** Something that finds the open pairs of a pass. */
export interface Contender {
  tool: 'opsconductor' | 'node-floor' | 'nmap';
  label: string;
  run(pass: Pass): Promise<ScanRun>;
}

const cpuMsSince = (start: NodeJS.CpuUsage) => {
  const { user, system } = process.cpuUsage(start);
  return (user + system) / 1000;
};

/** Services found by identification, counted: `{ ssh: 40 }`. */
function serviceCounts(identities: Awaited<ReturnType<typeof identifyHosts>>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const port of identities.flatMap((h) => h.ports)) {
    counts[port.service] = (counts[port.service] ?? 0) + 1;
  }
  return counts;
}

/**
 * OpsConductor's `findOpenPorts`, in process, timed with `performance.now()`; then
 * `identifyHosts` on what it found, timed apart (nmap -sT identifies nothing).
 */
export function opsConductor(scanOptions: ScanOptions, identifyOptions: IdentifyOptions, signal: AbortSignal): Contender {
  return {
    tool: 'opsconductor',
    label: 'opsconductor findOpenPorts',
    async run(pass) {
      const cpu = process.cpuUsage();
      const started = performance.now();
      const scan = await findOpenPorts(pass.hosts, pass.ports, { ...scanOptions, signal });
      const wallMs = performance.now() - started;
      const cpuMs = cpuMsSince(cpu);
      if (scan.canceled) {
        throw new Error('the scan was canceled');
      }
      const identifyCpu = process.cpuUsage();
      const identifyStarted = performance.now();
      const identities = await identifyHosts(scan.open, { ...identifyOptions, signal });
      const identifyMs = performance.now() - identifyStarted;
      return {
        wallMs,
        cpuMs,
        open: scan.open,
        extra: {
          identify_ms: Math.round(identifyMs),
          identify_cpu_ms: Math.round(cpuMsSince(identifyCpu)),
          services: serviceCounts(identities),
          probed: scan.probed,
          filtered: scan.filtered,
          attempts: scan.attempts,
          max_in_flight: scan.maxInFlight,
        },
      };
    },
  };
}

/**
 * The floor: a bare loop of `net.connect` with `concurrency` sockets in flight, same pair order as
 * the scanner (every host on one port, then the next port), no timers, retries or bookkeeping.
 * What a Node scanner costs with nothing but Node's sockets.
 */
export function nodeFloor(concurrency: number, signal: AbortSignal): Contender {
  return {
    tool: 'node-floor',
    label: `node:net floor, ${concurrency} in flight`,
    async run({ hosts, ports }) {
      const total = hosts.length * ports.length;
      const open: number[] = [];
      let next = 0;
      const probe = (index: number) =>
        new Promise<void>((resolve) => {
          const socket = connect(ports[Math.floor(index / hosts.length)] as number, hosts[index % hosts.length] as string);
          socket.once('connect', () => {
            open.push(index);
            socket.destroy();
            resolve();
          });
          socket.once('error', () => {
            socket.destroy();
            resolve();
          });
        });
      const worker = async () => {
        while (next < total && !signal.aborted) {
          await probe(next++);
        }
      };
      const cpu = process.cpuUsage();
      const started = performance.now();
      await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
      const wallMs = performance.now() - started;
      const cpuMs = cpuMsSince(cpu);
      if (signal.aborted) {
        throw new Error('the floor was canceled');
      }
      const pairs = open.sort((a, b) => (a % hosts.length) - (b % hosts.length) || a - b).map((i) => ({ host: hosts[i % hosts.length] as string, port: ports[Math.floor(i / hosts.length)] as number }));
      return { wallMs, cpuMs, open: pairs };
    },
  };
}

/** Whether OpsConductor's nmap parser (the `nmap` scanner of a discovery job) reads the same pairs from the report. */
function srcParserAgrees(xml: string, open: OpenPort[]): boolean {
  const theirs = new Set(parseNmapXml(xml).map((o) => `${o.host}:${o.port}`));
  return theirs.size === open.length && open.every((o) => theirs.has(`${o.host}:${o.port}`));
}

/**
 * nmap -sT -T4 on the pass's range, its open pairs kept to the pass's hosts (nmap also probes .0
 * and .255). Its report is also read with OpsConductor's parser, as a check of that parser.
 */
export function nmap(signal: AbortSignal): Contender {
  return {
    tool: 'nmap',
    label: 'nmap -sT -T4',
    async run(pass) {
      const inPass = new Set(pass.hosts);
      const cpu = reapedChildrenMs();
      const r = await runNmap(nmapArgs(pass.ports, pass.range), signal);
      const outside = r.open.filter((o) => !inPass.has(o.host));
      return {
        wallMs: r.wallMs,
        cpuMs: reapedChildrenMs() - cpu,
        open: r.open.filter((o) => inPass.has(o.host)),
        extra: { nmap_elapsed_s: r.elapsedS, src_parser_agrees: srcParserAgrees(r.xml, r.open), ...(outside.length > 0 ? { open_outside_hosts: outside.map((o) => `${o.host}:${o.port}`) } : {}) },
      };
    },
  };
}
