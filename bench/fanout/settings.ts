/** The fan-out benchmark's command line: flags, their checks and the usage text. */
import { parseArgs } from 'node:util';

/** The command every contender runs on every host. */
export const COMMAND = 'uname -a';

/** The target: OpsConductor's median wall time over parallel-ssh's and over Ansible's, at most. */
export const TARGET = { pssh: 0.8, ansible: 0.3 } as const;

/** The settings of one invocation, checked. */
export interface Settings {
  /** Hosts in the fleet (--targets). */
  targets: number;
  runs: number;
  concurrency: number;
  timeoutMs: number;
  withTools: boolean;
  sshdReexec: boolean;
  /** How the fleet's sshd runs, as reported. */
  fleetSshd: string;
  /** Extra OPSCONDUCTOR_* variables for the servers (--server-env). */
  serverEnv: Record<string, string>;
  dbs: Array<'pglite' | 'postgres'>;
  postgresUrl: string;
  cpuProf?: string;
  traceDb: boolean;
  out?: string;
}

function parseFlags(args: string[]) {
  return parseArgs({
    args,
    options: {
      targets: { type: 'string', default: '200' },
      db: { type: 'string', default: 'both' },
      runs: { type: 'string', default: '3' },
      concurrency: { type: 'string', default: '50' },
      'postgres-url': { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/postgres' },
      'timeout-s': { type: 'string', default: '600' },
      'no-tools': { type: 'boolean', default: false },
      'sshd-reexec': { type: 'boolean', default: false },
      out: { type: 'string' },
      'cpu-prof': { type: 'string' },
      'trace-db': { type: 'boolean', default: false },
      'server-env': { type: 'string', multiple: true, default: [] },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  }).values;
}

/** Prints the usage (after `message`, if any) and exits: 2 with a message, 0 without. */
function usage(message?: string): never {
  if (message) {
    process.stderr.write(`bench:fanout: ${message}\n`);
  }
  process.stderr.write(
    'usage: npm run bench:fanout -- --targets N [--db both|pglite|postgres] [--runs 3] [--concurrency 50]\n' +
      '         [--postgres-url URL] [--timeout-s 600] [--no-tools] [--sshd-reexec] [--out FILE] [--cpu-prof DIR] [--trace-db]\n' +
      '         [--server-env OPSCONDUCTOR_NAME=VALUE …]\n',
  );
  process.exit(message ? 2 : 0);
}

function positiveInt(name: string, value: string | undefined, max: number): number {
  if (!value || !/^\d+$/.test(value) || Number(value) < 1 || Number(value) > max) {
    usage(`--${name} must be a whole number from 1 to ${max}`);
  }
  return Number(value);
}

function serverEnv(pairs: string[]): Record<string, string> {
  return Object.fromEntries(
    pairs.map((pair) => {
      const m = /^(OPSCONDUCTOR_[A-Z0-9_]+)=(.*)$/.exec(pair);
      return m ? [m[1] as string, m[2] as string] : usage(`--server-env takes OPSCONDUCTOR_NAME=VALUE, not ${pair}`);
    }),
  );
}

/** Parses `args` (the command line after the script); prints the usage and exits on --help or a bad value. */
export function parseSettings(args: string[]): Settings {
  const flags = parseFlags(args);
  if (flags.help) {
    usage();
  }
  const targets = positiveInt('targets', flags.targets, 10_000);
  const runs = positiveInt('runs', flags.runs, 20);
  const concurrency = positiveInt('concurrency', flags.concurrency, 1000);
  const timeoutMs = positiveInt('timeout-s', flags['timeout-s'], 24 * 3600) * 1000;
  const sshdReexec = flags['sshd-reexec'] ?? false;
  const env = serverEnv(flags['server-env'] ?? []);
  const dbs = ({ both: ['pglite', 'postgres'], pglite: ['pglite'], postgres: ['postgres'] } as Record<string, Settings['dbs']>)[flags.db ?? ''] ?? usage('--db must be both, pglite or postgres');
  return {
    targets,
    runs,
    concurrency,
    timeoutMs,
    withTools: !flags['no-tools'],
    sshdReexec,
    fleetSshd: sshdReexec ? 'stock sshd (re-executed per connection)' : 'sshd -r (forked per connection, no re-exec)',
    serverEnv: env,
    dbs,
    postgresUrl: flags['postgres-url'] as string,
    cpuProf: flags['cpu-prof'],
    traceDb: flags['trace-db'] ?? false,
    out: flags.out,
  };
}
