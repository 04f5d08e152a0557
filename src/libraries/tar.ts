/**
 * A small tar reader and writer for bundles (ustar with pax `x` and GNU `L` long names). Reading
 * refuses every link, device and FIFO entry outright: a bundle never needs one, and refusing is
 * simpler to trust than resolving where a link points. Writing is deterministic (sorted entries,
 * fixed owner, mode and time) so the same library always yields the same bytes and SHA-256.
 */
import { BundleError, entryError } from './bundle-error.ts';
import type { ArchiveBudget, ArchiveEntry } from './archive.ts';

const BLOCK = 512;
/** Largest pax or GNU long-name record accepted. */
const MAX_METADATA = 64 * 1024;

const REFUSED_TYPES: Record<string, string> = {
  '1': 'hard links are not allowed',
  '2': 'symbolic links are not allowed',
  '3': 'device files are not allowed',
  '4': 'device files are not allowed',
  '6': 'FIFOs are not allowed',
};

/** A NUL-terminated string field. */
function text(block: Buffer, start: number, length: number): string {
  const field = block.subarray(start, start + length);
  const end = field.indexOf(0);
  return field.subarray(0, end === -1 ? length : end).toString('utf8');
}

/** An octal numeric field (GNU base-256 when the first byte is 0x80); NaN when malformed. */
function numeric(block: Buffer, start: number, length: number): number {
  const field = block.subarray(start, start + length);
  if (field[0] === 0x80) {
    return field.subarray(1).reduce((n, byte) => n * 256 + byte, 0);
  }
  const digits = field.toString('latin1').replace(/[\0 ]+$/, '').trim();
  return /^[0-7]*$/.test(digits) ? (digits === '' ? 0 : parseInt(digits, 8)) : NaN;
}

/** Whether the header's checksum matches (unsigned, or signed as some old tars wrote it). */
function checksumOk(block: Buffer): boolean {
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : (block[i] as number);
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  const stored = numeric(block, 148, 8);
  return stored === unsigned || stored === signed;
}

/** The records of a pax extended header (`<len> <key>=<value>\n` …). */
function paxRecords(data: Buffer): Map<string, string> {
  const records = new Map<string, string>();
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    const length = Number(data.toString('latin1', at, space));
    if (space === -1 || !Number.isInteger(length) || length <= space - at || at + length > data.length || data[at + length - 1] !== 0x0a) {
      throw new BundleError('not a valid tar archive (bad pax header)');
    }
    const record = data.toString('utf8', space + 1, at + length - 1);
    const eq = record.indexOf('=');
    if (eq > 0) {
      records.set(record.slice(0, eq), record.slice(eq + 1));
    }
    at += length;
  }
  return records;
}

/** Names carried from pax `x` and GNU `L` headers to the entry that follows them. */
interface PendingNames {
  pax: Map<string, string>;
  longName: string | undefined;
}

/** One header and its body, with the offset of the next header. */
interface TarRecord {
  type: string;
  name: string;
  size: number;
  body: Buffer;
  next: number;
}

const METADATA_TYPES = new Set(['x', 'g', 'L', 'K']);

/** The entry's name: a pax `path`, else a GNU long name, else the ustar prefix and name fields. */
function readName(header: Buffer, pending: PendingNames): string {
  const posix = header.toString('latin1', 257, 263) === 'ustar\0';
  const prefix = posix ? text(header, 345, 155) : '';
  return pending.pax.get('path') ?? pending.longName ?? (prefix ? `${prefix}/${text(header, 0, 100)}` : text(header, 0, 100));
}

/** The header at `offset` and its body, refusing a bad checksum, a bad size or a truncated body. */
function readRecord(data: Buffer, offset: number, pending: PendingNames): TarRecord {
  const header = data.subarray(offset, offset + BLOCK);
  if (!checksumOk(header)) {
    throw new BundleError(offset === 0 ? 'the gzip data is not a tar archive' : 'not a valid tar archive (bad header checksum)');
  }
  const type = String.fromCharCode(header[156] as number);
  const name = readName(header, pending);
  const paxSize = pending.pax.get('size');
  const size = paxSize === undefined ? numeric(header, 124, 12) : Number(paxSize);
  const start = offset + BLOCK;
  if (!Number.isSafeInteger(size) || size < 0) {
    throw entryError(name, 'not a valid tar entry (bad size field)');
  }
  if (start + size > data.length) {
    throw new BundleError('not a valid tar archive (truncated)');
  }
  const body = data.subarray(start, start + size);
  return { type, name, size, body, next: start + Math.ceil(size / BLOCK) * BLOCK };
}

/** Keeps a pax `x` or GNU `L` header's name for the next entry; pax global and GNU long-link headers are skipped. */
function applyMetadata({ type, size, body }: TarRecord, pending: PendingNames): void {
  if (size > MAX_METADATA) {
    throw new BundleError('not a valid tar archive (metadata header too large)');
  }
  if (type === 'x') {
    pending.pax = paxRecords(body);
  } else if (type === 'L') {
    pending.longName = text(body, 0, body.length);
  }
}

/** The file or directory a record holds, counted against `budget`, refusing every other type. */
function toEntry({ type, name, size, body }: TarRecord, budget: ArchiveBudget): ArchiveEntry {
  budget.addEntry();
  const refused = REFUSED_TYPES[type];
  if (refused) {
    throw entryError(name, refused);
  }
  if (type === '5' || ((type === '0' || type === '\0') && name.endsWith('/') && size === 0)) {
    return { name, kind: 'directory', data: Buffer.alloc(0) };
  }
  if (type === '0' || type === '\0' || type === '7') {
    budget.addBytes(size);
    return { name, kind: 'file', data: Buffer.from(body) };
  }
  throw entryError(name, `unsupported tar entry type ${JSON.stringify(type)}`);
}

/** Refuses data that ended, without an end-of-archive marker, before any header or inside one. */
function checkUnmarkedEnd(data: Buffer, offset: number): void {
  if (offset === 0) {
    throw new BundleError('the gzip data is not a tar archive');
  }
  // Tolerate a missing end-of-archive marker, as GNU tar does, but not a partial header.
  if (offset !== data.length) {
    throw new BundleError('not a valid tar archive (truncated)');
  }
}

/** Every file and directory in an uncompressed tar, counted against `budget` as it is read. */
export function readTar(data: Buffer, budget: ArchiveBudget): ArchiveEntry[] {
  const entries: ArchiveEntry[] = [];
  const pending: PendingNames = { pax: new Map(), longName: undefined };
  let offset = 0;
  while (offset + BLOCK <= data.length) {
    if (data.subarray(offset, offset + BLOCK).every((byte) => byte === 0)) {
      return entries;
    }
    const record = readRecord(data, offset, pending);
    offset = record.next;
    if (METADATA_TYPES.has(record.type)) {
      applyMetadata(record, pending);
      continue;
    }
    // A pax or long name applies to the one entry that follows it.
    pending.pax = new Map();
    pending.longName = undefined;
    entries.push(toEntry(record, budget));
  }
  checkUnmarkedEnd(data, offset);
  return entries;
}

/** A pax record whose decimal length prefix counts itself. */
function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`;
  const bytes = Buffer.byteLength(body);
  let length = bytes + 1;
  while (String(length).length + bytes !== length) {
    length += 1;
  }
  return Buffer.from(`${length}${body}`, 'utf8');
}

/** One 512-byte ustar header. */
function header(name: string, size: number, type: '0' | 'x'): Buffer {
  const block = Buffer.alloc(BLOCK);
  block.write(name, 0, 100, 'utf8');
  block.write('0000644\0', 100, 'latin1');
  block.write('0000000\0', 108, 'latin1');
  block.write('0000000\0', 116, 'latin1');
  block.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  block.write('00000000000\0', 136, 'latin1');
  block.write(type, 156, 'latin1');
  block.write('ustar\0' + '00', 257, 'latin1');
  block.fill(0x20, 148, 156);
  const sum = block.reduce((n, byte) => n + byte, 0);
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return block;
}

/** Bytes padded with zeros to a whole number of blocks. */
function padded(data: Buffer): Buffer[] {
  const rest = data.length % BLOCK;
  return rest === 0 ? [data] : [data, Buffer.alloc(BLOCK - rest)];
}

/**
 * An uncompressed tar of `files` (canonical relative paths), sorted by path. Names longer than
 * the 100-byte ustar field, or not ASCII, get a pax `path` record.
 */
export function writeTar(files: ReadonlyMap<string, Buffer>): Buffer {
  const parts: Buffer[] = [];
  for (const path of [...files.keys()].sort()) {
    const data = files.get(path) as Buffer;
    if (Buffer.byteLength(path) > 100 || !/^[\x20-\x7e]*$/.test(path)) {
      const record = paxRecord('path', path);
      parts.push(header('PaxHeader', record.length, 'x'), ...padded(record));
    }
    parts.push(header(path, data.length, '0'), ...padded(data));
  }
  parts.push(Buffer.alloc(2 * BLOCK));
  return Buffer.concat(parts);
}
