/**
 * Network ranges for discovery (issue #8): a job's `network_range` is a comma-separated mix of
 * IPv4/IPv6 addresses, CIDR blocks, ranges (`10.0.0.5-40`, `10.0.0.5-10.0.1.20`, `::1-::5`) and host
 * names. Every part must lie wholly inside an allow-list (loopback unless the operator lists their
 * own networks), and a job holds at most `maxAddresses` of them. Sizes are computed on intervals
 * before anything is expanded, so memory stays bounded by the limit whatever the text says.
 * Pure apart from `resolveHostnames`, which asks the system resolver.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { BlockList, isIPv4, isIPv6 } from 'node:net';

/** The allow-list when an operator sets none: loopback only. */
export const DEFAULT_ALLOW = ['127.0.0.0/8', '::1/128'];
/** The default for `RangeLimits.maxAddresses`. */
export const DEFAULT_MAX_ADDRESSES = 65_536;

/** What a range may reach and how large it may be. */
export interface RangeLimits {
  /** CIDR blocks and single addresses (see `parseAllowList`); every target must lie inside one. */
  allow: string[];
  /** Most targets (distinct addresses plus host names) one range may hold. */
  maxAddresses: number;
}

/** One refused part of a range, quoted as written (trimmed), with the reason. */
export interface RangeProblem {
  part: string;
  message: string;
}

/** A parsed range. Only accepted parts are in `addresses`/`hostnames`: refuse the whole range when `errors` is not empty. */
export interface ParsedRange {
  /** Distinct addresses, IPv4 then IPv6, each in numeric order; IPv6 in RFC 5952 form. */
  addresses: string[];
  /** Distinct host names (lower case, sorted), resolved at scan time with `resolveHostnames`. */
  hostnames: string[];
  /** `addresses.length + hostnames.length`: a host name counts as one target until it is resolved. */
  count: number;
  errors: RangeProblem[];
}

/** A parsed allow-list. */
export interface AllowList {
  /** The entries in canonical form (`10.0.0.0/8`, `::1/128`), for messages. */
  readonly entries: readonly string[];
  /** Whether one address (an IPv4 or IPv6 literal) is allowed, answered by `net.BlockList`. */
  allows(address: string): boolean;
  /** Whether every address from `lo` to `hi` of the family is allowed (interval math, for ranges and blocks). */
  covers(family: Family, lo: bigint, hi: bigint): boolean;
}

/** IP version of an address. */
export type Family = 4 | 6;
interface Interval {
  lo: bigint;
  hi: bigint;
}
interface Address {
  family: Family;
  value: bigint;
}

const BITS = { 4: 32n, 6: 128n } as const;
/** IPv4-mapped IPv6 addresses, ::ffff:0:0/96. */
const MAPPED = { lo: 0xffffn << 32n, hi: (0xffffn << 32n) | 0xffffffffn };
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const DECIMAL = /^(?:0|[1-9]\d{0,2})$/;

/** Four decimal octets (no leading zeros: `net.isIPv4` refuses them, as they read as octal elsewhere). */
function ipv4Value(text: string): bigint {
  return text.split('.').reduce((v, octet) => (v << 8n) | BigInt(octet), 0n);
}

/** Eight groups of hex, `::` for a run of zero groups, and an optional dotted IPv4 tail (`::ffff:1.2.3.4`). */
function ipv6Value(text: string): bigint {
  const groups = (side: string) =>
    side === ''
      ? []
      : side.split(':').flatMap((g) => {
          if (!g.includes('.')) {
            return [BigInt(`0x${g}`)];
          }
          const v4 = ipv4Value(g);
          return [v4 >> 16n, v4 & 0xffffn];
        });
  // `net.isIPv6` has already checked the shape, including at most one `::`.
  const [head = '', tail] = text.split('::');
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const zeros = Array<bigint>(8 - left.length - right.length).fill(0n);
  return [...left, ...zeros, ...right].reduce((v, g) => (v << 16n) | g, 0n);
}

/** An IPv4 or IPv6 literal; undefined for anything else, zone-scoped IPv6 (`fe80::1%eth0`) included. */
function parseAddress(text: string): Address | undefined {
  if (isIPv4(text)) {
    return { family: 4, value: ipv4Value(text) };
  }
  return isIPv6(text) && !text.includes('%') ? { family: 6, value: ipv6Value(text) } : undefined;
}

/** Dotted quad, or RFC 5952 IPv6: lower-case hex, the first longest run of two or more zero groups as `::`. */
function formatAddress(family: Family, value: bigint): string {
  if (family === 4) {
    const n = Number(value);
    return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
  }
  const groups = [112n, 96n, 80n, 64n, 48n, 32n, 16n, 0n].map((shift) => (value >> shift) & 0xffffn);
  let [best, bestLen, start] = [-1, 1, -1];
  groups.forEach((g, i) => {
    start = g === 0n ? (start < 0 ? i : start) : -1;
    if (start >= 0 && i - start + 1 > bestLen) {
      [best, bestLen] = [start, i - start + 1];
    }
  });
  const hex = (gs: bigint[]) => gs.map((g) => g.toString(16)).join(':');
  return best < 0 ? hex(groups) : `${hex(groups.slice(0, best))}::${hex(groups.slice(best + bestLen))}`;
}

/** Orders IP literals numerically, IPv4 before IPv6; anything else after them, alphabetically. */
export function compareAddresses(a: string, b: string): number {
  const [x, y] = [parseAddress(a), parseAddress(b)];
  if (x && y) {
    return x.family !== y.family ? x.family - y.family : x.value < y.value ? -1 : x.value > y.value ? 1 : 0;
  }
  return x ? -1 : y ? 1 : a < b ? -1 : a > b ? 1 : 0;
}

/** RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens; the last label not all digits (that is a mistyped IPv4 address). */
function isHostname(name: string): boolean {
  const labels = name.split('.');
  return name.length <= 253 && labels.every((l) => LABEL.test(l)) && !/^\d+$/.test(labels.at(-1) ?? '');
}

/** `addr/prefix` as an interval with the host bits masked off (`exact` when none were set); a message when malformed. */
function parseCidr(text: string): { family: Family; lo: bigint; hi: bigint; prefix: bigint; exact: boolean } | string {
  const [addrText = '', prefixText = ''] = text.split('/', 2);
  const addr = parseAddress(addrText);
  if (!addr) {
    return `"${addrText}" is not an IPv4 or IPv6 address`;
  }
  const prefix = DECIMAL.test(prefixText) ? BigInt(prefixText) : -1n;
  if (prefix < 0n || prefix > BITS[addr.family]) {
    return `prefix length "/${prefixText}" must be a number from 0 to ${BITS[addr.family]}`;
  }
  const hostMask = (1n << (BITS[addr.family] - prefix)) - 1n;
  const lo = addr.value & ~hostMask;
  return { family: addr.family, lo, hi: lo | hostMask, prefix, exact: lo === addr.value };
}

type Part = { family: Family; lo: bigint; hi: bigint } | { hostname: string } | { error: string };

/** One trimmed, non-empty part of a range. */
function parsePart(part: string): Part {
  if (part.includes('/')) {
    const block = parseCidr(part);
    if (typeof block === 'string') {
      return { error: block };
    }
    // IPv4 blocks up to /30 are scanned without their network and broadcast addresses; /31 (RFC 3021) and /32 keep all.
    const trim = block.family === 4 && block.hi - block.lo >= 3n ? 1n : 0n;
    return { family: block.family, lo: block.lo + trim, hi: block.hi - trim };
  }
  const dash = part.indexOf('-');
  const start = parseAddress(dash < 0 ? part : part.slice(0, dash).trimEnd());
  if (start && dash < 0) {
    return { family: start.family, lo: start.value, hi: start.value };
  }
  if (start) {
    const endText = part.slice(dash + 1).trimStart();
    const end =
      start.family === 4 && DECIMAL.test(endText) && Number(endText) <= 255
        ? { family: start.family, value: (start.value & ~0xffn) | BigInt(endText) }
        : parseAddress(endText);
    if (!end || end.family !== start.family) {
      return { error: `the end of the range "${endText}" is not ${start.family === 4 ? 'an IPv4 address or a last octet (0-255)' : 'an IPv6 address'}` };
    }
    if (end.value < start.value) {
      return { error: `the range is reversed: ${formatAddress(end.family, end.value)} comes before ${formatAddress(start.family, start.value)}` };
    }
    return { family: start.family, lo: start.value, hi: end.value };
  }
  if (isHostname(part.toLowerCase())) {
    return { hostname: part.toLowerCase() };
  }
  return { error: /^[\d.]+$/.test(part) ? 'not a valid IPv4 address (four numbers from 0 to 255)' : 'not an IP address, CIDR block, range or host name' };
}

/**
 * Adds [lo, hi] to `list` (sorted, disjoint intervals; overlaps and neighbours merged) when `commit`.
 * Returns how many of its addresses were not in the list yet.
 */
function mergeInterval(list: Interval[], lo: bigint, hi: bigint, commit: boolean): bigint {
  let [first, end] = [0, list.length];
  while (first < end) {
    const mid = (first + end) >> 1;
    [first, end] = (list[mid]?.hi ?? 0n) < lo - 1n ? [mid + 1, end] : [first, mid];
  }
  let [last, covered, newLo, newHi] = [first, 0n, lo, hi];
  for (let s = list[last]; s && s.lo <= hi + 1n; s = list[++last]) {
    const [from, to] = [s.lo > lo ? s.lo : lo, s.hi < hi ? s.hi : hi];
    covered += to >= from ? to - from + 1n : 0n;
    [newLo, newHi] = [s.lo < newLo ? s.lo : newLo, s.hi > newHi ? s.hi : newHi];
  }
  if (commit) {
    list.splice(first, last - first, { lo: newLo, hi: newHi });
  }
  return hi - lo + 1n - covered;
}

/**
 * Parses an allow-list of CIDR blocks (`10.0.0.0/8`) and single addresses (`192.0.2.7`, `::1`).
 * Throws an Error naming the first bad entry; a block with host bits set (`10.0.0.1/8`) is refused,
 * as it may be a typo for a narrower network.
 */
export function parseAllowList(list: string[]): AllowList {
  const blockList = new BlockList();
  const intervals: Record<Family, Interval[]> = { 4: [], 6: [] };
  const entries = list.map((raw) => {
    const entry = raw.trim();
    const block = parseCidr(entry.includes('/') ? entry : `${entry}/${isIPv6(entry) ? 128 : 32}`);
    if (typeof block === 'string' || !block.exact) {
      const why = typeof block === 'string' ? block : `host bits are set (the network is ${formatAddress(block.family, block.lo)}/${block.prefix})`;
      throw new Error(`Allow-list entry "${entry}" is not a CIDR block or address: ${why}`);
    }
    const network = formatAddress(block.family, block.lo);
    blockList.addSubnet(network, Number(block.prefix), block.family === 4 ? 'ipv4' : 'ipv6');
    mergeInterval(intervals[block.family], block.lo, block.hi, true);
    return `${network}/${block.prefix}`;
  });
  const allows = (address: string) => {
    const type = isIPv4(address) ? 'ipv4' : isIPv6(address) && !address.includes('%') ? 'ipv6' : undefined;
    return type !== undefined && blockList.check(address, type);
  };
  const covers = (family: Family, lo: bigint, hi: bigint) => intervals[family].some((s) => s.lo <= lo && hi <= s.hi);
  return { entries, allows, covers };
}

function checkedMax(max: number): bigint {
  if (!Number.isSafeInteger(max) || max < 1) {
    throw new RangeError(`maxAddresses must be a positive integer, not ${max}`);
  }
  return BigInt(max);
}

/** Accepted parts so far: distinct intervals per family and host names, with their total. */
interface Taken {
  intervals: Record<Family, Interval[]>;
  hostnames: Set<string>;
  total: bigint;
}

/** Takes one parsed part into `taken`, or returns why not; nothing is expanded here. */
function takePart(parsed: Part, taken: Taken, allow: AllowList, max: bigint): string | undefined {
  const over = (n: bigint) => `would bring the job to ${n} addresses, more than the limit of ${max}`;
  if ('error' in parsed) {
    return parsed.error;
  }
  if ('hostname' in parsed) {
    const added = taken.hostnames.has(parsed.hostname) ? 0n : 1n;
    if (taken.total + added > max) {
      return over(taken.total + added);
    }
    taken.hostnames.add(parsed.hostname);
    taken.total += added;
    return undefined;
  }
  const { family, lo, hi } = parsed;
  // net.BlockList and nmap treat IPv4-mapped IPv6 addresses as IPv4 (a part too large to scan gets the size message instead).
  if (family === 6 && lo <= MAPPED.hi && hi >= MAPPED.lo && hi - lo < max) {
    return `IPv4-mapped IPv6 addresses (::ffff:0:0/96) are not scanned${lo === hi ? `: write ${formatAddress(4, lo & 0xffffffffn)}` : ''}`;
  }
  if (!allow.covers(family, lo, hi)) {
    return `outside the allowed networks (${allow.entries.join(', ') || 'none'})`;
  }
  if (hi - lo + 1n > max) {
    return `${hi - lo + 1n} addresses, more than the limit of ${max}`;
  }
  const added = mergeInterval(taken.intervals[family], lo, hi, false);
  if (taken.total + added > max) {
    return over(taken.total + added);
  }
  mergeInterval(taken.intervals[family], lo, hi, true);
  taken.total += added;
  return undefined;
}

/**
 * Parses a `network_range` without throwing: `errors` names every bad part (syntax, outside the
 * allow-list, reversed range, too many addresses …). A part that would take the total past
 * `maxAddresses` is refused before it is expanded. Throws only when `limits` itself is invalid
 * (validate it at startup with `parseAllowList`).
 */
export function parseNetworkRange(text: string, limits: RangeLimits): ParsedRange {
  const allow = parseAllowList(limits.allow);
  const max = checkedMax(limits.maxAddresses);
  if (text.trim() === '') {
    return { addresses: [], hostnames: [], count: 0, errors: [{ part: '', message: 'the network range is empty' }] };
  }
  const errors: RangeProblem[] = [];
  const taken: Taken = { intervals: { 4: [], 6: [] }, hostnames: new Set(), total: 0n };
  const parts = text.split(',').map((p) => p.trim());
  parts.forEach((part, i) => {
    const parsed: Part = part === '' ? { error: `entry ${i + 1} of ${parts.length} is empty (a stray comma?)` } : parsePart(part);
    const message = takePart(parsed, taken, allow, max);
    if (message !== undefined) {
      errors.push({ part, message });
    }
  });
  const addresses: string[] = [];
  for (const family of [4, 6] as const) {
    for (const { lo, hi } of taken.intervals[family]) {
      for (let value = lo; value <= hi; value++) {
        addresses.push(formatAddress(family, value));
      }
    }
  }
  // A second, independent check before anything may be scanned: the interval math must agree with net.BlockList.
  const stray = addresses.find((a) => !allow.allows(a));
  if (stray !== undefined) {
    throw new Error(`Range check failed: ${stray} passed the interval check but is outside the allow-list`);
  }
  return { addresses, hostnames: [...taken.hostnames].sort(), count: Number(taken.total), errors };
}

/** Resolves one host name to all its addresses (node:dns/promises `lookup` with `all: true` by default). */
export type LookupAll = (hostname: string) => Promise<Array<{ address: string; family: number }>>;

const systemLookup: LookupAll = (hostname) => dnsLookup(hostname, { all: true });

/** One host name's allowed addresses, and a problem for each address (or failure) that is not. */
async function resolveOne(hostname: string, allow: AllowList, lookup: LookupAll): Promise<{ addresses: string[]; errors: RangeProblem[] }> {
  if (!isHostname(hostname)) {
    return { addresses: [], errors: [{ part: hostname, message: 'not a valid host name' }] };
  }
  let results: Array<{ address: string }>;
  try {
    results = await lookup(hostname);
  } catch (e) {
    return { addresses: [], errors: [{ part: hostname, message: `could not be resolved (${(e as { code?: string }).code ?? String(e)})` }] };
  }
  const addresses: string[] = [];
  const errors: RangeProblem[] = [];
  for (const { address: raw } of results) {
    const parsed = parseAddress(raw);
    // An IPv4-mapped answer (::ffff:a.b.c.d) is checked and scanned as the IPv4 address it stands for.
    const mapped = parsed?.family === 6 && parsed.value >= MAPPED.lo && parsed.value <= MAPPED.hi;
    const address = !parsed ? raw : mapped ? formatAddress(4, parsed.value & 0xffffffffn) : formatAddress(parsed.family, parsed.value);
    if (parsed && allow.allows(address)) {
      addresses.push(address);
    } else {
      errors.push({ part: hostname, message: `resolves to ${address}, outside the allowed networks (${allow.entries.join(', ') || 'none'})` });
    }
  }
  return { addresses, errors };
}

/**
 * Resolves host names at scan time (all addresses of each). Every resolved address must be allowed:
 * one that is not is left out and reported as a problem naming the host name and the address, as is
 * a name that does not resolve. An address reached by two names is kept once, under the first; at
 * most `maxAddresses` distinct addresses are returned, in `compareAddresses` order. `lookup` is for tests.
 */
export async function resolveHostnames(hostnames: string[], limits: RangeLimits, lookup: LookupAll = systemLookup): Promise<{ hosts: Array<{ address: string; hostname: string }>; errors: RangeProblem[] }> {
  const allow = parseAllowList(limits.allow);
  const max = Number(checkedMax(limits.maxAddresses));
  const names = [...new Set(hostnames.map((h) => h.trim().toLowerCase()))];
  const resolved: Array<{ addresses: string[]; errors: RangeProblem[] }> = [];
  // A few lookups at a time: getaddrinfo runs on libuv's small thread pool, shared with fs and crypto.
  for (let i = 0; i < names.length; i += 4) {
    resolved.push(...(await Promise.all(names.slice(i, i + 4).map((name) => resolveOne(name, allow, lookup)))));
  }
  const errors: RangeProblem[] = [];
  const found = new Map<string, { address: string; hostname: string }>();
  resolved.forEach((result, i) => {
    const hostname = names[i] ?? '';
    errors.push(...result.errors);
    for (const address of result.addresses.filter((a) => !found.has(a))) {
      if (found.size >= max) {
        errors.push({ part: hostname, message: `resolves to ${address}, more than the limit of ${max} addresses` });
      } else {
        found.set(address, { address, hostname });
      }
    }
  });
  return { hosts: [...found.values()].sort((a, b) => compareAddresses(a.address, b.address)), errors };
}
