/**
 * The floor under OpsConductor's fan-out: the same SSH transport it uses (src/executor/ssh.ts on
 * ssh2), driven directly with `concurrency` connections in flight, with no database, queue or
 * HTTP. run.ts keeps it running as a child process: every line on stdin starts one fan-out over
 * all hosts, answered by one JSON line on stdout: { wallMs, cpuMs, succeeded } (measured inside
 * this process, so start-up is not counted). It exits when stdin closes.
 *
 *   node --import tsx bench/fanout/ssh2-fanout.ts HOSTS_FILE PORT KEY_FILE CONCURRENCY COMMAND
 */
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

import { connectSsh, prepareKey } from '../../src/executor/ssh.ts';
import { FLEET_USER } from './fleet.ts';

const [hostsFile, port, keyFile, concurrency, command] = process.argv.slice(2);
if (!hostsFile || !port || !keyFile || !concurrency || !command) {
  process.stderr.write('usage: ssh2-fanout.ts HOSTS_FILE PORT KEY_FILE CONCURRENCY COMMAND\n');
  process.exit(2);
}
const hosts = readFileSync(hostsFile, 'utf8').split('\n').filter(Boolean);
// Parsed once, as the product's executor does for a run's credential.
const privateKey = prepareKey(readFileSync(keyFile, 'utf8'));

async function one(host: string): Promise<boolean> {
  const connection = await connectSsh({ host, port: Number(port), username: FLEET_USER, privateKey, expectedHostKey: null });
  try {
    const result = await connection.exec(command as string, { timeoutMs: 60_000 });
    return result.exitCode === 0 && result.stdout.length > 0;
  } finally {
    connection.close();
  }
}

async function fanOut(): Promise<{ wallMs: number; cpuMs: number; succeeded: number }> {
  const cpu = process.cpuUsage();
  const started = performance.now();
  let next = 0;
  let succeeded = 0;
  const worker = async () => {
    while (next < hosts.length) {
      const host = hosts[next++] as string;
      if (await one(host).catch(() => false)) {
        succeeded++;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(Number(concurrency), hosts.length) }, worker));
  const used = process.cpuUsage(cpu);
  return { wallMs: performance.now() - started, cpuMs: (used.user + used.system) / 1000, succeeded };
}

for await (const _line of createInterface({ input: process.stdin })) {
  process.stdout.write(`${JSON.stringify(await fanOut())}\n`);
}
