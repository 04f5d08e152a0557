/**
 * Diagnostic preload for the OpsConductor server (run.ts --trace-db loads it with
 * `--import tsx --import ./bench/fanout/trace-db.ts`): counts and times every SQL statement the
 * process sends, through `pg` (PostgreSQL, pg-boss included) or PGlite, by statement shape.
 * Changes no behaviour. On SIGUSR2 it writes `{ seq, statements }` to OC_BENCH_TRACE_FILE and
 * starts counting afresh, so the benchmark can take one snapshot per run.
 */
import { writeFileSync } from 'node:fs';

import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';

type Stat = { count: number; ms: number };
let stats = new Map<string, Stat>();
let seq = 0;

/** A statement's shape: literals and parameter lists folded, whitespace squeezed, cut short. */
function shape(sql: string): string {
  return sql
    .replace(/\s+/g, ' ')
    .replace(/'(?:[^']|'')*'/g, "'?'")
    .replace(/\$\d+(?:\s*,\s*\$\d+)+/g, '$n…')
    .replace(/\(\$n…\)(?:\s*,\s*\(\$n…\))+/g, '($n…)…')
    .trim()
    .slice(0, 140);
}

function record(sql: unknown, started: number): void {
  const key = shape(typeof sql === 'string' ? sql : String((sql as { text?: string })?.text ?? '?'));
  const s = stats.get(key) ?? { count: 0, ms: 0 };
  s.count++;
  s.ms += performance.now() - started;
  stats.set(key, s);
}

type AnyFn = (...args: unknown[]) => unknown;

/** Wraps a query function, promise or callback style. */
function traced(original: AnyFn): AnyFn {
  return function (this: unknown, ...args: unknown[]) {
    const started = performance.now();
    const last = args[args.length - 1];
    if (typeof last === 'function') {
      args[args.length - 1] = (...cbArgs: unknown[]) => {
        record(args[0], started);
        return (last as AnyFn)(...cbArgs);
      };
      return original.apply(this, args);
    }
    const result = original.apply(this, args);
    if (result && typeof (result as Promise<unknown>).then === 'function') {
      return (result as Promise<unknown>).finally(() => record(args[0], started));
    }
    return result;
  };
}

const clientProto = pg.Client.prototype as unknown as Record<string, AnyFn>;
clientProto.query = traced(clientProto.query as AnyFn);

const pgliteProto = PGlite.prototype as unknown as Record<string, AnyFn>;
pgliteProto.query = traced(pgliteProto.query as AnyFn);
pgliteProto.exec = traced(pgliteProto.exec as AnyFn);
// OpsConductor's one-pass statements (src/db/pglite-dialect.ts) go through execProtocol: the SQL
// is the text of the Parse message at the start ('P', length, empty statement name, text, NUL).
const execProtocol = pgliteProto.execProtocol as AnyFn;
pgliteProto.execProtocol = function (this: unknown, ...args: unknown[]) {
  const [message, ...rest] = args as [Uint8Array, ...unknown[]];
  const isParse = message[0] === 0x50 && message[5] === 0;
  const started = performance.now();
  const result = execProtocol.call(this, message, ...rest) as Promise<unknown>;
  if (!isParse) {
    return result;
  }
  const text = Buffer.from(message.buffer, message.byteOffset + 6, message.length - 6);
  const sql = text.subarray(0, text.indexOf(0)).toString('utf8');
  return result.finally(() => record(sql, started));
};
const transaction = pgliteProto.transaction as AnyFn;
pgliteProto.transaction = function (this: unknown, fn: unknown) {
  const started = performance.now();
  const wrapped = (tx: Record<string, unknown>) => {
    const proxy = new Proxy(tx, {
      get: (target, prop, receiver) => {
        const value = Reflect.get(target, prop, receiver) as unknown;
        return (prop === 'query' || prop === 'exec') && typeof value === 'function' ? traced(value as AnyFn) : value;
      },
    });
    return (fn as (tx: unknown) => unknown)(proxy);
  };
  const result = transaction.call(this, wrapped) as Promise<unknown>;
  // The whole transaction holds PGlite's only connection: time it as one entry too.
  return result.finally(() => record('(pglite transaction, whole)', started));
};

const file = process.env.OC_BENCH_TRACE_FILE;
if (file) {
  process.on('SIGUSR2', () => {
    seq++;
    const statements = Object.fromEntries([...stats].sort((a, b) => b[1].ms - a[1].ms).map(([k, s]) => [k, { count: s.count, ms: Math.round(s.ms) }]));
    stats = new Map();
    writeFileSync(file, JSON.stringify({ seq, statements }));
  });
}
