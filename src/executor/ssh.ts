/**
 * SSH transport (ssh2): connect with host-key pinning, run commands. No database, no domain
 * types: the caller passes the pinned fingerprint and persists a first-seen one (trust on first
 * use). A key that differs from the pinned one aborts the handshake before any credential is sent.
 */
import { createPrivateKey, sign as cryptoSign } from 'node:crypto';

import ssh2, { type AnyAuthMethod, Client, type ClientChannel, type ConnectConfig, type ParsedKey, type SFTPWrapper } from 'ssh2';

import { cappedBytes } from '../shared/output.ts';
import { ssh2KeyText } from '../shared/ssh-key-format.ts';
import { sshFingerprint } from '../shared/ssh-fingerprint.ts';
import { commandStopper, type StopReason } from './stopper.ts';

/** How a connection attempt failed. */
export type SshFailureKind = 'offline' | 'auth_failed' | 'host_key_mismatch';

/** A failed connection, classified. */
export class SshConnectError extends Error {
  constructor(
    readonly kind: SshFailureKind,
    message: string,
    /** The fingerprint the server presented, when the handshake got that far. */
    readonly presentedHostKey?: string,
  ) {
    super(message);
    this.name = 'SshConnectError';
  }
}

/** Where and how to connect. */
export interface SshConnectOptions {
  host: string;
  port: number;
  username: string;
  password?: string;
  /** Key text, or a key from {@link prepareKey} (parse once, connect many times). */
  privateKey?: string | PreparedKey;
  passphrase?: string;
  /** The pinned host key fingerprint; null on first use. */
  expectedHostKey: string | null;
  /** Handshake + authentication deadline. @defaultValue 15000 */
  readyTimeoutMs?: number;
}

/** Result of one command. */
export interface ExecResult {
  stdout: string;
  stderr: string;
  exitCode: number | null;
  signal: string | null;
  /** Set when we killed the command: it ran past its timeout, or the caller aborted it. */
  killed?: StopReason;
}

/** How to run a command. */
export interface ExecOptions {
  timeoutMs?: number;
  /** Aborting kills the remote command (SSH: signal KILL to its process group; WinRM: terminate and delete the shell). */
  signal?: AbortSignal;
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  /** Keep at most this many bytes of each stream in the result (the callbacks see everything). */
  maxBytes?: number;
}

/** An authenticated connection. */
export interface SshConnection {
  /** The server's host key fingerprint (SHA256:…), for pinning on first use. */
  hostKey: string;
  exec(command: string, options?: ExecOptions): Promise<ExecResult>;
  /** An SFTP session over this connection. */
  sftp(): Promise<SFTPWrapper>;
  close(): void;
}

function classify(err: Error & { level?: string; code?: string }, mismatch: boolean, presented: string | undefined): SshConnectError {
  if (mismatch) {
    return new SshConnectError('host_key_mismatch', `The host key changed (now ${presented}); refusing to authenticate. Reset the pinned key if the change is expected.`, presented);
  }
  if (err.level === 'client-authentication') {
    return new SshConnectError('auth_failed', 'Authentication failed: the server rejected the credential', presented);
  }
  return new SshConnectError('offline', `Could not connect: ${err.code ?? err.message}`, presented);
}

/** A private key parsed once, signing with a ready OpenSSL key object. */
export type PreparedKey = ParsedKey & { readonly prepared: true };

/** The hash each key type signs with when ssh2 names none. */
const DEFAULT_HASH: Partial<Record<string, string | null>> = {
  'ssh-ed25519': null,
  'ssh-rsa': 'sha1',
  'ecdsa-sha2-nistp256': 'sha256',
  'ecdsa-sha2-nistp384': 'sha384',
  'ecdsa-sha2-nistp521': 'sha512',
};

/**
 * Parses `text` once for many connections. ssh2 signs from the key's PEM text, which OpenSSL 3
 * decodes again on every signature (~0.6 ms, most of a handshake's client CPU): the prepared key
 * signs with a decoded key object instead, producing the same signature bytes.
 */
export function prepareKey(text: string, passphrase?: string): PreparedKey {
  const parsed = ssh2.utils.parseKey(ssh2KeyText(text, passphrase), passphrase);
  if (parsed instanceof Error) {
    throw new SshConnectError('auth_failed', `The private key cannot be read: ${parsed.message}`);
  }
  const key = parsed as PreparedKey;
  const defaultHash = DEFAULT_HASH[key.type];
  if (defaultHash !== undefined) {
    const keyObject = createPrivateKey(key.getPrivatePEM());
    // ssh2 expects a failed signature back as an Error, not thrown.
    key.sign = ((data: Buffer | string, algo?: string) => {
      try {
        return cryptoSign(algo || defaultHash, Buffer.from(data), keyObject);
      } catch (e) {
        return e as Error;
      }
    }) as ParsedKey['sign'];
  }
  return Object.assign(key, { prepared: true as const });
}

/** Public key first, then the password: no `none` probe, one round trip less than ssh2's default. */
function authMethods(options: SshConnectOptions): AnyAuthMethod[] {
  const methods: AnyAuthMethod[] = [];
  if (options.privateKey !== undefined) {
    const key = typeof options.privateKey === 'string' ? prepareKey(options.privateKey, options.passphrase) : options.privateKey;
    methods.push({ type: 'publickey', username: options.username, key });
  }
  if (options.password !== undefined) {
    methods.push({ type: 'password', username: options.username, password: options.password });
  }
  return methods;
}

/** Opens an authenticated connection or throws {@link SshConnectError}. */
export function connectSsh(options: SshConnectOptions): Promise<SshConnection> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    let presented: string | undefined;
    let mismatch = false;
    const config: ConnectConfig = {
      host: options.host,
      port: options.port,
      username: options.username,
      authHandler: authMethods(options),
      readyTimeout: options.readyTimeoutMs ?? 15_000,
      tryKeyboard: false,
      hostVerifier: (key: Buffer) => {
        presented = sshFingerprint(key);
        mismatch = options.expectedHostKey !== null && options.expectedHostKey !== presented;
        return !mismatch;
      },
    };
    client.once('ready', () => {
      // After the handshake, a dropped connection surfaces as closed channels; keep the error quiet.
      client.on('error', () => {});
      resolve(wrap(client, presented ?? ''));
    });
    client.once('error', (err) => {
      client.end();
      reject(classify(err, mismatch, presented));
    });
    client.connect(config);
  });
}

/** How often a kill is repeated while the channel stays open, and when to stop waiting for it. */
const KILL_RETRY_MS = 500;
const KILL_GIVE_UP_MS = 15_000;

/**
 * Kills the channel's command once it must stop (see {@link commandStopper}). Until the channel
 * closes the kill is repeated; after KILL_GIVE_UP_MS, `giveUp`.
 */
function channelKiller(channel: ClientChannel, options: ExecOptions, giveUp: () => void) {
  const stopper = commandStopper(options);
  let resignal: NodeJS.Timeout | undefined;
  let giveUpTimer: NodeJS.Timeout | undefined;
  stopper.signal.addEventListener(
    'abort',
    () => {
      // sshd delivers the signal to the session's whole process group. A signal that arrives
      // before the session's process exists is lost, so it is repeated until the channel closes.
      channel.signal('KILL');
      channel.close();
      resignal = setInterval(() => channel.signal('KILL'), KILL_RETRY_MS);
      giveUpTimer = setTimeout(giveUp, KILL_GIVE_UP_MS);
    },
    { once: true },
  );
  stopper.stopIfAborted();
  return {
    killed: stopper.reason,
    dispose() {
      stopper.dispose();
      clearInterval(resignal);
      clearTimeout(giveUpTimer);
    },
  };
}

/**
 * Listens to the channel's output (kept up to `maxBytes` per stream; the callbacks see every chunk)
 * and exit status; returns a function giving the result so far.
 */
function channelOutput(channel: ClientChannel, options: ExecOptions): () => Omit<ExecResult, 'killed'> {
  const max = options.maxBytes ?? Number.MAX_SAFE_INTEGER;
  const out = cappedBytes(max);
  const err = cappedBytes(max);
  let exitCode: number | null = null;
  let signal: string | null = null;
  channel.on('data', (chunk: Buffer) => {
    out.push(chunk);
    options.onStdout?.(chunk);
  });
  channel.stderr.on('data', (chunk: Buffer) => {
    err.push(chunk);
    options.onStderr?.(chunk);
  });
  channel.on('exit', (code: number | null, sig?: string) => {
    exitCode = code;
    signal = sig ?? signal;
  });
  return () => ({ stdout: out.text(), stderr: err.text(), exitCode, signal });
}

/** The command's result once its channel closes (or, once killed, when we give up waiting for that). */
function collect(channel: ClientChannel, options: ExecOptions): Promise<ExecResult> {
  return new Promise((resolve) => {
    let settled = false;
    const finish = () => {
      if (!settled) {
        settled = true;
        killer.dispose();
        resolve({ ...result(), killed: killer.killed() });
      }
    };
    const killer = channelKiller(channel, options, finish);
    const result = channelOutput(channel, options);
    channel.on('close', finish);
  });
}

function wrap(client: Client, hostKey: string): SshConnection {
  return {
    hostKey,
    exec: (command, options = {}) =>
      new Promise((resolve, reject) => {
        client.exec(command, (err, channel) => (err ? reject(err) : resolve(collect(channel, options))));
      }),
    sftp: () => new Promise((resolve, reject) => client.sftp((err, sftp) => (err ? reject(err) : resolve(sftp)))),
    close: () => client.end(),
  };
}
