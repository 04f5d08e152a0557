/**
 * Service identification by what a port says, not only by its number. Per open port: connect and
 * wait briefly for a server-first banner (SSH, FTP/SMTP `220`); if none, RDP and SMB get their
 * protocol's opening request on 3389 and 445, anything else an HTTP `HEAD /` (over TLS first on
 * 443/5986/8443, and over TLS again when plain HTTP was refused). Ports that never answer get a
 * name from their number. Each answer may carry a clue to the host's OS; the strongest clue wins.
 * Every socket has a timer and is destroyed. No database, no domain types.
 */
import { connect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

/** What one open port turned out to be. */
export interface PortIdentity {
  port: number;
  /** `ssh`, `http`, `https`, `winrm`, `rdp`, `smb`, `ftp`, `smtp`… or `unknown`. */
  service: string;
  /** What the service said (first line, printable, ≤ 200 characters), or a short description of a binary reply; null when it said nothing. */
  banner: string | null;
}

/** One host, its OS as far as its services tell, and what each open port is. */
export interface HostIdentity {
  host: string;
  os: 'linux' | 'windows' | 'unknown';
  /** A distribution or product named by a service (`Debian`, `Ubuntu`, `IIS 10.0`, `FreeBSD`…). */
  osHint: string | null;
  /** By port number. */
  ports: PortIdentity[];
  /** Distinct services found, `unknown` left out. */
  services: string[];
}

/** How identification runs. */
export interface IdentifyOptions {
  /** Longest time spent on one port, in ms. @defaultValue 2000 */
  timeoutMs?: number;
  /** Ports being identified at once. @defaultValue 64 */
  concurrency?: number;
  /** Destroys the sockets; ports not identified yet are named by their number. */
  signal?: AbortSignal;
}

/** A hint at the host's OS and how far to trust it (3: the service names it; 1: a guess). */
export interface OsClue {
  os: HostIdentity['os'];
  hint: string | null;
  weight: number;
}

/** A port's identity plus what it suggests about the OS. */
export interface PortFinding extends Omit<PortIdentity, 'port'> {
  clue?: OsClue;
}

const FALLBACK: Record<number, string> = { 22: 'ssh', 80: 'http', 443: 'https', 445: 'smb', 3389: 'rdp', 5985: 'winrm', 5986: 'winrm' };
const TLS_PORTS = new Set([443, 5986, 8443]);
const WINRM_PORTS = new Set([5985, 5986]);
const BANNER_WAIT_MS = 400;
const MAX_REPLY_BYTES = 16_384;
/** X.224 Connection Request with an RDP negotiation request (TLS | CredSSP), as mstsc opens. */
const RDP_CONNECTION_REQUEST = Buffer.from('030000130ee000000000000100080003000000', 'hex');
const RDP_PROTOCOLS: Record<number, string> = { 0: 'RDP security', 1: 'TLS', 2: 'CredSSP (NLA)', 4: 'RDSTLS', 8: 'CredSSP (early auth)' };
const LINUX_HINTS = ['Ubuntu', 'Debian', 'Raspbian', 'CentOS', 'Red Hat', 'Fedora', 'Rocky', 'AlmaLinux', 'SUSE', 'Alpine'];
const BSD_HINTS = ['FreeBSD', 'NetBSD', 'OpenBSD'];

const fallbackFinding = (port: number): PortFinding => ({ service: FALLBACK[port] ?? 'unknown', banner: null });
const windows = (weight: number, hint: string | null = null): OsClue => ({ os: 'windows', hint, weight });

/** First line of a reply, printable ASCII only, at most 200 characters; null when nothing is left. */
export function bannerText(data: Buffer | string): string | null {
  const line = (typeof data === 'string' ? data : data.toString('latin1')).split(/\r?\n/)[0] ?? '';
  return line.replace(/[^\x20-\x7e]/g, '').trim().slice(0, 200) || null;
}

/** OS named in free text: a Linux distribution or BSD in a product string, or Microsoft. */
function osFromText(text: string, weight: number): OsClue | undefined {
  const linux = LINUX_HINTS.find((h) => text.toLowerCase().includes(h.toLowerCase()));
  const bsd = BSD_HINTS.find((h) => text.includes(h));
  if (/microsoft|win(32|64)|windows/i.test(text)) {
    return windows(weight);
  }
  return linux ? { os: 'linux', hint: linux, weight } : bsd ? { os: 'unknown', hint: bsd, weight } : undefined;
}

/**
 * An SSH identification string (`SSH-2.0-OpenSSH_9.2p1 Debian-2`). A vendor suffix names the
 * distribution; BSDs stay os `unknown` with a hint. Plain OpenSSH or Dropbear is a weak guess at
 * Linux (RHEL and most others send no suffix), which any stronger clue overrides.
 */
export function sshOsClue(line: string): OsClue | undefined {
  const [, software = '', comment = ''] = /^SSH-[\d.]+-(\S*)\s*(.*)$/.exec(line) ?? [];
  if (/for_Windows/i.test(software)) {
    return windows(3);
  }
  return osFromText(comment, 3) ?? (/^(OpenSSH|dropbear)/i.test(software) ? { os: 'linux', hint: null, weight: 1 } : undefined);
}

/** A server-first banner: SSH, or a `220` greeting (FTP or SMTP); anything else keeps the port's name. */
export function classifyBanner(port: number, data: Buffer | string): PortFinding {
  const banner = bannerText(data);
  if (banner?.startsWith('SSH-')) {
    return { service: 'ssh', banner, clue: sshOsClue(banner) };
  }
  if (banner && /^220[ -]/.test(banner)) {
    const smtp = /smtp|mail/i.test(banner) || (!/ftp/i.test(banner) && [25, 465, 587].includes(port));
    return { service: smtp ? 'smtp' : 'ftp', banner, clue: osFromText(banner, 2) };
  }
  return { service: FALLBACK[port] ?? 'unknown', banner };
}

/** The status line and headers (names lowercased) of an HTTP response head; undefined when it is not HTTP. */
export function parseHttpHead(data: Buffer | string): { statusLine: string; headers: Record<string, string> } | undefined {
  const text = typeof data === 'string' ? data : data.toString('latin1');
  if (!/^HTTP\/\d/.test(text)) {
    return undefined;
  }
  const [statusLine = '', ...lines] = (text.split(/\r?\n\r?\n/)[0] ?? '').split(/\r?\n/);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) {
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers[name] = headers[name] ? `${headers[name]}, ${value}` : value;
    }
  }
  return { statusLine: statusLine.trim(), headers };
}

/**
 * An HTTP answer. `Microsoft-HTTPAPI` (http.sys) on 5985/5986, or on a port that answered a WS-Management
 * request (`wsman`), is WinRM; IIS and other Windows servers say windows; `Apache/2.4 (Debian)` names a distribution.
 * @defaultValue context.tls true on 443, 5986 and 8443
 */
export function classifyHttp(port: number, statusLine: string, headers: Record<string, string>, context: { tls?: boolean; wsman?: boolean } = {}): PortFinding {
  const server = headers.server ?? '';
  const banner = bannerText(server) ?? bannerText(statusLine);
  const httpApi = /Microsoft-HTTPAPI/i.test(server);
  if (context.wsman || (httpApi && WINRM_PORTS.has(port))) {
    return { service: 'winrm', banner, clue: httpApi ? windows(3) : undefined };
  }
  const service = (context.tls ?? TLS_PORTS.has(port)) ? 'https' : 'http';
  const iis = /Microsoft-IIS\/([\d.]+)/i.exec(server);
  return { service, banner, clue: iis ? windows(3, `IIS ${iis[1]}`) : osFromText(server, 2) };
}

/** A TPKT (RFC 1006) reply to the X.224 Connection Request: an RDP server, Windows or xrdp. */
export function classifyRdpReply(data: Buffer): PortFinding | undefined {
  if (data.length < 7 || data[0] !== 0x03 || data[1] !== 0x00) {
    return undefined;
  }
  // RDP_NEG_RSP after the 4-byte TPKT header and the 7-byte Connection Confirm: the security the server picked.
  const negotiated = data.length >= 19 && data[11] === 0x02 ? RDP_PROTOCOLS[data.readUInt32LE(15)] : undefined;
  return { service: 'rdp', banner: negotiated ? `RDP, ${negotiated}` : 'RDP', clue: windows(2) };
}

/** SMB2 NEGOTIATE (dialects 2.0.2–3.0.2) in a NetBIOS session frame. */
export function smbNegotiateRequest(): Buffer {
  const header = Buffer.alloc(64);
  header.write('\xfeSMB', 0, 'latin1');
  header.writeUInt16LE(64, 4); // StructureSize; command 0 = NEGOTIATE
  header.writeUInt16LE(1, 14); // CreditRequest
  const dialects = [0x0202, 0x0210, 0x0300, 0x0302];
  const body = Buffer.alloc(36 + dialects.length * 2);
  body.writeUInt16LE(36, 0);
  body.writeUInt16LE(dialects.length, 2);
  body.writeUInt16LE(1, 4); // SecurityMode: signing enabled
  dialects.forEach((d, i) => body.writeUInt16LE(d, 36 + i * 2));
  const frame = Buffer.alloc(4);
  frame.writeUInt32BE(header.length + body.length, 0);
  return Buffer.concat([frame, header, body]);
}

/** An SMB reply. Only a reply naming Samba says Linux; otherwise SMB is a weak hint at Windows. */
export function classifySmbReply(data: Buffer): PortFinding | undefined {
  const magic = data.subarray(4, 8).toString('latin1');
  if (magic !== '\xfeSMB' && magic !== '\xffSMB') {
    return undefined;
  }
  const dialect = magic === '\xfeSMB' && data.length >= 74 ? data.readUInt16LE(72).toString(16).padStart(4, '0') : undefined;
  const banner = dialect ? `SMB2, dialect ${dialect.split('').join('.').replace(/^0\./, '')}` : 'SMB1';
  const samba = data.includes('Samba', 0, 'latin1') || data.includes(Buffer.from('Samba', 'utf16le'));
  return { service: 'smb', banner, clue: samba ? { os: 'linux', hint: 'Samba', weight: 2 } : windows(1) };
}

/** Where a probe goes; `deadline` (epoch ms) bounds all of one port's connections. */
interface Target {
  host: string;
  port: number;
  deadline: number;
  /** Cancel callbacks of open sockets (one abort listener for all of them). */
  cancelers: Set<() => void>;
  signal?: AbortSignal;
}

/**
 * Connects (over TLS without checking the certificate: nothing secret is sent), writes `request`
 * if any, and collects the reply until `done` holds, the peer closes, `waitMs` or the deadline
 * pass. Undefined when it could not connect, or the signal aborted.
 */
function exchange(t: Target, tls: boolean, request: string | Buffer | null, done: (data: Buffer) => boolean, waitMs: number): Promise<{ data: Buffer; closed: boolean } | undefined> {
  const ms = Math.min(waitMs, t.deadline - Date.now());
  if (ms <= 0 || t.signal?.aborted) {
    return Promise.resolve(undefined);
  }
  return new Promise((resolve) => {
    let data = Buffer.alloc(0);
    let connected = false;
    // Old TLS too (a Windows 2008 WinRM listener): only a HEAD is sent.
    const tlsOptions = { host: t.host, port: t.port, rejectUnauthorized: false, minVersion: 'TLSv1', ciphers: 'DEFAULT:@SECLEVEL=0', servername: isIP(t.host) ? undefined : t.host } as const;
    const socket: Socket = tls ? tlsConnect(tlsOptions) : connect({ host: t.host, port: t.port });
    const finish = (closed: boolean, canceled = false) => {
      clearTimeout(timer);
      t.cancelers.delete(cancel);
      socket.destroy();
      resolve(connected && !canceled ? { data, closed } : undefined);
    };
    const cancel = () => finish(false, true);
    const timer = setTimeout(() => finish(false), ms);
    t.cancelers.add(cancel);
    socket.once(tls ? 'secureConnect' : 'connect', () => {
      connected = true;
      if (request) {
        socket.write(request);
      }
    });
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      if (done(data) || data.length >= MAX_REPLY_BYTES) {
        finish(false);
      }
    });
    socket.on('error', () => finish(true));
    socket.on('close', () => finish(true));
  });
}

const hasLine = (data: Buffer) => data.includes(0x0a);
const headDone = (data: Buffer) => data.includes('\r\n\r\n') || data.includes('\n\n');
const hostHeader = (host: string) => (isIP(host) === 6 ? `[${host}]` : host);

/** Whether an http.sys port answers a WS-Management POST (401 with a challenge, or SOAP). */
async function answersWsman(t: Target, tls: boolean): Promise<boolean> {
  const request = `POST /wsman HTTP/1.1\r\nHost: ${hostHeader(t.host)}\r\nContent-Type: application/soap+xml;charset=UTF-8\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`;
  const head = parseHttpHead((await exchange(t, tls, request, headDone, Infinity))?.data ?? '');
  const challenged = head?.statusLine.split(' ')[1] === '401' && Boolean(head.headers['www-authenticate']);
  return challenged || /soap/i.test(head?.headers['content-type'] ?? '');
}

/** `HEAD /`; over TLS again when plain HTTP got a close or a TLS alert. Undefined when nothing HTTP-like answered. */
async function probeHttp(t: Target, tls: boolean, tlsTried: boolean): Promise<PortFinding | undefined> {
  const reply = await exchange(t, tls, `HEAD / HTTP/1.0\r\nHost: ${hostHeader(t.host)}\r\n\r\n`, headDone, Infinity);
  const head = reply && parseHttpHead(reply.data);
  if (head) {
    const wsman = /Microsoft-HTTPAPI/i.test(head.headers.server ?? '') && !WINRM_PORTS.has(t.port) && (await answersWsman(t, tls));
    return classifyHttp(t.port, head.statusLine, head.headers, { tls, wsman });
  }
  if (!reply || tls) {
    return undefined;
  }
  if (reply.data[0] !== 0x15 && bannerText(reply.data)) {
    return classifyBanner(t.port, reply.data); // a late server-first banner, or a text protocol's error line
  }
  return !tlsTried && (reply.closed || reply.data[0] === 0x15) ? probeHttp(t, true, true) : undefined;
}

/** One open port, within its deadline; a port that fails or says nothing useful gets the name its number suggests. */
async function identifyPort(t: Target, timeoutMs: number): Promise<PortFinding> {
  const viaTls = TLS_PORTS.has(t.port) ? await probeHttp(t, true, true) : undefined;
  if (viaTls) {
    return viaTls;
  }
  const first = await exchange(t, false, null, hasLine, Math.min(BANNER_WAIT_MS, timeoutMs / 2));
  if (!first) {
    return fallbackFinding(t.port);
  }
  if (first.data.length > 0) {
    return classifyBanner(t.port, first.data);
  }
  if (t.port === 3389) {
    const reply = await exchange(t, false, RDP_CONNECTION_REQUEST, (d) => d.length >= 4 && d.length >= d.readUInt16BE(2), Infinity);
    return (reply && classifyRdpReply(reply.data)) ?? fallbackFinding(t.port);
  }
  if (t.port === 445) {
    const reply = await exchange(t, false, smbNegotiateRequest(), (d) => d.length >= 4 && d.length >= 4 + d.readUInt32BE(0), Infinity);
    return (reply && classifySmbReply(reply.data)) ?? fallbackFinding(t.port);
  }
  return (await probeHttp(t, false, TLS_PORTS.has(t.port))) ?? fallbackFinding(t.port);
}

/** The host's OS from its ports' clues: the strongest wins (the first on a tie); its hint, or another clue's for the same OS. */
export function resolveOs(clues: Array<OsClue | undefined>): Pick<HostIdentity, 'os' | 'osHint'> {
  const known = clues.filter((c): c is OsClue => c !== undefined);
  const best = known.reduce<OsClue | undefined>((a, c) => (!a || c.weight > a.weight ? c : a), undefined);
  if (!best) {
    return { os: 'unknown', osHint: null };
  }
  return { os: best.os, osHint: best.hint ?? known.find((c) => c.os === best.os && c.hint)?.hint ?? null };
}

/** Runs `fn` over `items`, at most `concurrency` at a time, keeping the order. */
async function mapPool<T, R>(items: T[], concurrency: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, concurrency), items.length) }, worker));
  return results;
}

/**
 * Identifies the open ports found by a scan, grouped by host in the order hosts first appear.
 * `timeoutMs` bounds each port (so the call, when there are no more ports than `concurrency`).
 * After the signal aborts, the remaining ports are named by number and the call resolves.
 * Network failures never reject; a port outside 1–65535 throws RangeError.
 */
export async function identifyHosts(open: Array<{ host: string; port: number }>, options: IdentifyOptions = {}): Promise<HostIdentity[]> {
  const { timeoutMs = 2000, concurrency = 64, signal } = options;
  const seen = new Map<string, Set<number>>();
  for (const { host, port } of open) {
    if (!Number.isInteger(port) || port < 1 || port > 65_535) {
      throw new RangeError(`not a TCP port: ${port}`);
    }
    seen.set(host, (seen.get(host) ?? new Set()).add(port));
  }
  const byHost = new Map([...seen].map(([host, ports]) => [host, [...ports].sort((a, b) => a - b)]));
  const cancelers = new Set<() => void>();
  const cancelAll = () => cancelers.forEach((cancel) => cancel());
  signal?.addEventListener('abort', cancelAll, { once: true });
  // Host by host, each host's ports in order: findings are sliced back per host in the same order.
  const pairs = [...byHost].flatMap(([host, ports]) => ports.map((port) => ({ host, port })));
  try {
    const findings = await mapPool(pairs, concurrency, ({ host, port }) =>
      signal?.aborted ? Promise.resolve(fallbackFinding(port)) : identifyPort({ host, port, deadline: Date.now() + timeoutMs, cancelers, signal }, timeoutMs),
    );
    let offset = 0;
    return [...byHost].map(([host, hostPorts]) => {
      const mine = findings.slice(offset, (offset += hostPorts.length));
      const ports = hostPorts.map((port, i) => ({ port, service: mine[i]?.service ?? 'unknown', banner: mine[i]?.banner ?? null }));
      const services = [...new Set(ports.map((p) => p.service).filter((s) => s !== 'unknown'))];
      return { host, ...resolveOs(mine.map((f) => f.clue)), ports, services };
    });
  } finally {
    signal?.removeEventListener('abort', cancelAll);
  }
}

/** Identifies the given open ports of one host (see {@link identifyHosts}). */
export async function identifyHost(host: string, ports: number[], options: IdentifyOptions = {}): Promise<HostIdentity> {
  const [identity] = await identifyHosts(
    ports.map((port) => ({ host, port })),
    options,
  );
  return identity ?? { host, os: 'unknown', osHint: null, ports: [], services: [] };
}
