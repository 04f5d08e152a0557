/**
 * Typed configuration: defaults < environment (`OPSCONDUCTOR_*`) < CLI flags. Validated once,
 * every problem reported together, returned frozen and passed into `createDeps` — never imported.
 * This is the only module that reads `process.env` (through the `env` argument).
 */
import { Type, type Static } from 'typebox';
import { Compile } from 'typebox/compile';

const Port = Type.Integer({ minimum: 0, maximum: 65535 });

/** The whole configuration. */
export const ConfigSchema = Type.Object({
  http: Type.Object({
    /** Interface every listener binds to. @defaultValue 127.0.0.1 */
    host: Type.String({ minLength: 1 }),
    /** Gateway port; each service listens on port + its offset. @defaultValue 3000 */
    port: Port,
    /** Also listen on the per-service ports. @defaultValue true */
    servicePorts: Type.Boolean(),
    /** Maximum JSON body size in bytes. @defaultValue 1 MiB */
    bodyLimit: Type.Integer({ minimum: 1024 }),
    /** Allowed CORS origins; empty means CORS is off. */
    corsOrigins: Type.Array(Type.String({ minLength: 1 })),
    /** Trust X-Forwarded-For (behind a reverse proxy). @defaultValue false */
    trustProxy: Type.Boolean(),
  }),
  db: Type.Object({
    /** PostgreSQL URL; empty selects embedded PGlite in `dataDir`. */
    url: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
    /** Pool size for PostgreSQL. @defaultValue 10 */
    poolMax: Type.Integer({ minimum: 1, maximum: 500 }),
  }),
  /** Directory for the embedded database, keys and files. @defaultValue ./data */
  dataDir: Type.String({ minLength: 1 }),
  auth: Type.Object({
    /** HS256 secret (≥ 32 chars); generated once and stored in the database when absent. */
    jwtSecret: Type.Optional(Type.String({ minLength: 32 })),
    /** Password of the first admin; a random one is generated when absent. */
    adminPassword: Type.Optional(Type.String({ minLength: 12 })),
    /** Access token lifetime in seconds. @defaultValue 900 */
    accessTtlS: Type.Integer({ minimum: 30 }),
    /** Refresh token lifetime in seconds. @defaultValue 604800 */
    refreshTtlS: Type.Integer({ minimum: 60 }),
    /** Failed logins per username per window before 429. @defaultValue 10 */
    maxFailuresPerUser: Type.Integer({ minimum: 1 }),
    /** Failed logins per client IP per window before 429. @defaultValue 100 */
    maxFailuresPerIp: Type.Integer({ minimum: 1 }),
    /** Login throttling window in seconds. @defaultValue 900 */
    failureWindowS: Type.Integer({ minimum: 1 }),
  }),
  secrets: Type.Object({
    /** Master key (32 bytes, base64) wrapping every secret's data key; required with a database URL. */
    masterKey: Type.Optional(Type.String({ minLength: 1 })),
    /** Older master keys still accepted for opening secrets during a rotation. */
    previousMasterKeys: Type.Array(Type.String({ minLength: 1 })),
    /** Target of `admin rotate-master-key` when keys come from the environment. */
    newMasterKey: Type.Optional(Type.String({ minLength: 1 })),
  }),
  worker: Type.Object({
    /** Run-targets one worker process handles at once. @defaultValue 50 */
    concurrency: Type.Integer({ minimum: 1, maximum: 10000 }),
    /** Seconds a worker's claim on a run-target lasts without renewal. @defaultValue 30 */
    leaseS: Type.Integer({ minimum: 2, maximum: 3600 }),
    /** Output kept per step per target (stdout and stderr each). @defaultValue 1 MiB */
    maxOutputBytes: Type.Integer({ minimum: 1024 }),
  }),
  files: Type.Object({
    /** The file store for sftp steps and /files; default DATA_DIR/files. */
    dir: Type.Optional(Type.String({ minLength: 1 })),
    /** Largest file accepted by PUT /files. @defaultValue 100 MiB */
    maxUploadBytes: Type.Integer({ minimum: 1 }),
  }),
  notify: Type.Object({
    /** Delivery attempts per notification before it is `failed`. @defaultValue 5 */
    maxAttempts: Type.Integer({ minimum: 1, maximum: 50 }),
    /** First retry delay in seconds; each next one is 2.5 × longer (5 attempts ≈ 30 min). @defaultValue 60 */
    retryBaseS: Type.Number({ minimum: 0.1, maximum: 86400 }),
    /** Base URL of the web console/API put in notifications (links to runs). @defaultValue http://localhost:3000 */
    publicUrl: Type.String({ pattern: '^https?://' }),
  }),
  discovery: Type.Object({
    /** Networks scans may reach (CIDRs or addresses). @defaultValue loopback only */
    allow: Type.Array(Type.String({ minLength: 1 }), { minItems: 1 }),
    /** Most addresses one discovery job may cover. @defaultValue 65536 */
    maxAddresses: Type.Integer({ minimum: 1, maximum: 16_777_216 }),
    /** Sockets in flight per scan. @defaultValue 512 */
    concurrency: Type.Integer({ minimum: 1, maximum: 10_000 }),
    /** Connect timeout per probe in ms (one retry after a timeout). @defaultValue 1000 */
    timeoutMs: Type.Integer({ minimum: 50, maximum: 60_000 }),
    /** Connection attempts started per second; 0 = unlimited. @defaultValue 0 */
    ratePerSecond: Type.Integer({ minimum: 0 }),
  }),
  /** pino level. @defaultValue info */
  logLevel: Type.Enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
});

/** Validated, frozen configuration. */
export type Config = Readonly<Static<typeof ConfigSchema>>;

/** Values the CLI may override (already typed). */
export type ConfigOverrides = {
  port?: number;
  host?: string;
  servicePorts?: boolean;
  dataDir?: string;
  databaseUrl?: string;
  concurrency?: number;
  logLevel?: string;
};

type Parser = 'string' | 'int' | 'number' | 'bool' | 'list';

/** Environment variable → config path and how to parse it. */
export const ENV_VARS: Record<string, { path: string; parse: Parser; secret?: boolean }> = {
  OPSCONDUCTOR_HOST: { path: 'http.host', parse: 'string' },
  OPSCONDUCTOR_PORT: { path: 'http.port', parse: 'int' },
  OPSCONDUCTOR_SERVICE_PORTS: { path: 'http.servicePorts', parse: 'bool' },
  OPSCONDUCTOR_BODY_LIMIT_BYTES: { path: 'http.bodyLimit', parse: 'int' },
  OPSCONDUCTOR_CORS_ORIGINS: { path: 'http.corsOrigins', parse: 'list' },
  OPSCONDUCTOR_TRUST_PROXY: { path: 'http.trustProxy', parse: 'bool' },
  OPSCONDUCTOR_DATABASE_URL: { path: 'db.url', parse: 'string', secret: true },
  OPSCONDUCTOR_DB_POOL_MAX: { path: 'db.poolMax', parse: 'int' },
  OPSCONDUCTOR_DATA_DIR: { path: 'dataDir', parse: 'string' },
  OPSCONDUCTOR_JWT_SECRET: { path: 'auth.jwtSecret', parse: 'string', secret: true },
  OPSCONDUCTOR_ADMIN_PASSWORD: { path: 'auth.adminPassword', parse: 'string', secret: true },
  OPSCONDUCTOR_ACCESS_TOKEN_TTL_S: { path: 'auth.accessTtlS', parse: 'int' },
  OPSCONDUCTOR_REFRESH_TOKEN_TTL_S: { path: 'auth.refreshTtlS', parse: 'int' },
  OPSCONDUCTOR_LOGIN_MAX_FAILURES_PER_USER: { path: 'auth.maxFailuresPerUser', parse: 'int' },
  OPSCONDUCTOR_LOGIN_MAX_FAILURES_PER_IP: { path: 'auth.maxFailuresPerIp', parse: 'int' },
  OPSCONDUCTOR_LOGIN_FAILURE_WINDOW_S: { path: 'auth.failureWindowS', parse: 'int' },
  OPSCONDUCTOR_MASTER_KEY: { path: 'secrets.masterKey', parse: 'string', secret: true },
  OPSCONDUCTOR_MASTER_KEY_PREVIOUS: { path: 'secrets.previousMasterKeys', parse: 'list', secret: true },
  OPSCONDUCTOR_NEW_MASTER_KEY: { path: 'secrets.newMasterKey', parse: 'string', secret: true },
  OPSCONDUCTOR_WORKER_CONCURRENCY: { path: 'worker.concurrency', parse: 'int' },
  OPSCONDUCTOR_LEASE_S: { path: 'worker.leaseS', parse: 'int' },
  OPSCONDUCTOR_MAX_OUTPUT_BYTES: { path: 'worker.maxOutputBytes', parse: 'int' },
  OPSCONDUCTOR_FILES_DIR: { path: 'files.dir', parse: 'string' },
  OPSCONDUCTOR_MAX_UPLOAD_BYTES: { path: 'files.maxUploadBytes', parse: 'int' },
  OPSCONDUCTOR_LOG_LEVEL: { path: 'logLevel', parse: 'string' },
  OPSCONDUCTOR_NOTIFY_MAX_ATTEMPTS: { path: 'notify.maxAttempts', parse: 'int' },
  OPSCONDUCTOR_NOTIFY_RETRY_BASE_S: { path: 'notify.retryBaseS', parse: 'number' },
  OPSCONDUCTOR_PUBLIC_URL: { path: 'notify.publicUrl', parse: 'string' },
  OPSCONDUCTOR_DISCOVERY_ALLOW: { path: 'discovery.allow', parse: 'list' },
  OPSCONDUCTOR_DISCOVERY_MAX_ADDRESSES: { path: 'discovery.maxAddresses', parse: 'int' },
  OPSCONDUCTOR_DISCOVERY_CONCURRENCY: { path: 'discovery.concurrency', parse: 'int' },
  OPSCONDUCTOR_DISCOVERY_TIMEOUT_MS: { path: 'discovery.timeoutMs', parse: 'int' },
  OPSCONDUCTOR_DISCOVERY_RATE: { path: 'discovery.ratePerSecond', parse: 'int' },
};

const OVERRIDE_PATHS: Record<keyof ConfigOverrides, string> = {
  port: 'http.port',
  host: 'http.host',
  servicePorts: 'http.servicePorts',
  dataDir: 'dataDir',
  databaseUrl: 'db.url',
  concurrency: 'worker.concurrency',
  logLevel: 'logLevel',
};

function defaults(): Record<string, unknown> {
  return {
    http: { host: '127.0.0.1', port: 3000, servicePorts: true, bodyLimit: 1024 * 1024, corsOrigins: [], trustProxy: false },
    db: { poolMax: 10 },
    dataDir: './data',
    auth: {
      accessTtlS: 900,
      refreshTtlS: 7 * 24 * 3600,
      maxFailuresPerUser: 10,
      maxFailuresPerIp: 100,
      failureWindowS: 900,
    },
    secrets: { previousMasterKeys: [] },
    worker: { concurrency: 50, leaseS: 30, maxOutputBytes: 1024 * 1024 },
    files: { maxUploadBytes: 100 * 1024 * 1024 },
    notify: { maxAttempts: 5, retryBaseS: 60, publicUrl: 'http://localhost:3000' },
    discovery: { allow: ['127.0.0.0/8', '::1/128'], maxAddresses: 65_536, concurrency: 512, timeoutMs: 1000, ratePerSecond: 0 },
    logLevel: 'info',
  };
}

/** Thrown when configuration is invalid; `issues` lists every problem. */
export class ConfigError extends Error {
  constructor(readonly issues: string[]) {
    super(`Invalid configuration:\n  - ${issues.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let node = target;
  for (const key of keys.slice(0, -1)) {
    node = node[key] as Record<string, unknown>;
  }
  node[keys[keys.length - 1] as string] = value;
}

function parseEnvValue(name: string, raw: string, parse: Parser, issues: string[]): unknown {
  switch (parse) {
    case 'string':
      return raw;
    case 'list':
      return raw.split(',').map((s) => s.trim()).filter(Boolean);
    case 'int': {
      if (!/^-?\d+$/.test(raw.trim())) {
        issues.push(`${name}: must be an integer`);
      }
      return Number(raw);
    }
    case 'number': {
      if (!/^\d+(\.\d+)?$/.test(raw.trim())) {
        issues.push(`${name}: must be a number`);
      }
      return Number(raw);
    }
    case 'bool': {
      const v = raw.trim().toLowerCase();
      if (!['1', '0', 'true', 'false', 'yes', 'no'].includes(v)) {
        issues.push(`${name}: must be true or false`);
      }
      return ['1', 'true', 'yes'].includes(v);
    }
  }
}

function sourceName(path: string): string {
  const env = Object.entries(ENV_VARS).find(([, spec]) => spec.path === path);
  return env ? env[0] : path;
}

const checkConfig = Compile(ConfigSchema);

/** Builds the configuration from defaults, `env` and CLI `overrides`; throws {@link ConfigError}. */
export function loadConfig(env: NodeJS.ProcessEnv, overrides: ConfigOverrides = {}): Config {
  const raw = defaults();
  const issues: string[] = [];
  for (const [name, spec] of Object.entries(ENV_VARS)) {
    const value = env[name];
    if (value !== undefined && value !== '') {
      setPath(raw, spec.path, parseEnvValue(name, value, spec.parse, issues));
    }
  }
  for (const [key, value] of Object.entries(overrides)) {
    if (value !== undefined) {
      setPath(raw, OVERRIDE_PATHS[key as keyof ConfigOverrides], value);
    }
  }
  const unparsable = new Set(issues.map((i) => i.split(':')[0]));
  for (const error of checkConfig.Errors(raw)) {
    const name = sourceName(error.instancePath.slice(1).replaceAll('/', '.'));
    if (!unparsable.has(name)) {
      issues.push(`${name}: ${error.message}`);
    }
  }
  if (issues.length > 0) {
    throw new ConfigError([...new Set(issues)]);
  }
  return deepFreeze(raw) as Config;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) {
      deepFreeze(v);
    }
    Object.freeze(value);
  }
  return value;
}

/** A copy of `config` safe to log: secrets masked, database password hidden. */
export function redactConfig(config: Config): Record<string, unknown> {
  const copy = structuredClone(config) as Record<string, unknown>;
  for (const spec of Object.values(ENV_VARS)) {
    if (spec.secret) {
      const keys = spec.path.split('.');
      const parent = keys.slice(0, -1).reduce<Record<string, unknown>>((n, k) => n[k] as Record<string, unknown>, copy);
      const leaf = keys[keys.length - 1] as string;
      if (parent[leaf] !== undefined) {
        parent[leaf] = leaf === 'url' ? maskUrl(String(parent[leaf])) : '***';
      }
    }
  }
  return copy;
}

function maskUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) {
      u.password = '***';
    }
    return u.toString();
  } catch {
    return '***';
  }
}
