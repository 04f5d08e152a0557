/**
 * A zip reader for bundles. It walks the central directory itself because that is where the
 * entry's Unix mode lives (fflate's unzip does not expose external attributes), refuses links,
 * devices, encryption, multi-volume and ZIP64 archives (none is needed under the size limit), and
 * inflates each entry with node:zlib capped at the bytes still allowed, so a zip bomb stops as soon
 * as it passes the limit. Sizes and CRC-32 are checked against the central directory.
 */
import { crc32, inflateRaw } from 'node:zlib';
import { promisify } from 'node:util';

import { BundleError, entryError } from './bundle-error.ts';
import { type ArchiveBudget, type ArchiveEntry, tooLarge } from './archive.ts';

const inflateRawAsync = promisify(inflateRaw);

const EOCD = 0x06054b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const S_IFMT = 0o170000;
const UNIX_TYPES: Record<number, string | undefined> = {
  0o120000: 'symbolic links are not allowed',
  0o020000: 'device files are not allowed',
  0o060000: 'device files are not allowed',
  0o010000: 'FIFOs are not allowed',
  0o140000: 'sockets are not allowed',
};

/** One central directory record. */
interface CentralEntry {
  name: string;
  flags: number;
  method: number;
  crc: number;
  compressedSize: number;
  size: number;
  attributes: number;
  localOffset: number;
}

const corrupt = (what: string) => new BundleError(`not a valid zip archive (${what})`);

/** The end-of-central-directory record's offset (it may be followed by a comment of up to 64 KiB). */
function findEnd(data: Buffer): number {
  for (let at = data.length - 22; at >= Math.max(0, data.length - 22 - 0xffff); at--) {
    if (data.readUInt32LE(at) === EOCD) {
      return at;
    }
  }
  throw corrupt('no end of central directory');
}

/** Where the central directory lies, per the end record, and how many records it holds. */
interface CentralBounds {
  end: number;
  total: number;
  cdOffset: number;
}

/** The end record's account of the central directory, refusing ZIP64, multiple volumes and too many entries. */
function readCentralBounds(data: Buffer, budget: ArchiveBudget): CentralBounds {
  const end = findEnd(data);
  const [disk, cdDisk, onDisk, total] = [4, 6, 8, 10].map((o) => data.readUInt16LE(end + o)) as [number, number, number, number];
  const cdSize = data.readUInt32LE(end + 12);
  const cdOffset = data.readUInt32LE(end + 16);
  if (total === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    throw new BundleError('ZIP64 archives are not supported');
  }
  if (disk !== 0 || cdDisk !== 0 || onDisk !== total) {
    throw new BundleError('multi-volume zip archives are not supported');
  }
  if (total > budget.maxEntries) {
    throw new BundleError(`archive has more than ${budget.maxEntries} entries`);
  }
  if (cdOffset + cdSize > end) {
    throw corrupt('central directory out of bounds');
  }
  return { end, total, cdOffset };
}

/** The central directory record at `at`, which must lie before `end`, and the offset of the next one. */
function readCentralRecord(data: Buffer, at: number, end: number): { entry: CentralEntry; next: number } {
  if (at + 46 > end || data.readUInt32LE(at) !== CENTRAL) {
    throw corrupt('bad central directory record');
  }
  const flags = data.readUInt16LE(at + 8);
  const nameEnd = at + 46 + data.readUInt16LE(at + 28);
  if (nameEnd > end) {
    throw corrupt('bad central directory record');
  }
  const entry: CentralEntry = {
    // Bit 11 marks UTF-8 names; others are CP437, which matches latin1 for the ASCII bundles use.
    name: data.toString(flags & 0x800 ? 'utf8' : 'latin1', at + 46, nameEnd),
    flags,
    method: data.readUInt16LE(at + 10),
    crc: data.readUInt32LE(at + 16),
    compressedSize: data.readUInt32LE(at + 20),
    size: data.readUInt32LE(at + 24),
    attributes: data.readUInt32LE(at + 38),
    localOffset: data.readUInt32LE(at + 42),
  };
  return { entry, next: nameEnd + data.readUInt16LE(at + 30) + data.readUInt16LE(at + 32) };
}

/** The central directory's records, checked for the features bundles do not support. */
function centralDirectory(data: Buffer, budget: ArchiveBudget): CentralEntry[] {
  const { end, total, cdOffset } = readCentralBounds(data, budget);
  const entries: CentralEntry[] = [];
  let at = cdOffset;
  for (let i = 0; i < total; i++) {
    const { entry, next } = readCentralRecord(data, at, end);
    entries.push(entry);
    at = next;
  }
  return entries;
}

/** What kind of entry this is, refusing the kinds a bundle may not hold. */
function entryKind(entry: CentralEntry): ArchiveEntry['kind'] {
  // The Unix mode is the high 16 bits of the external attributes, whatever the "made by" system
  // claims: an archive that hides a symlink mode behind another system byte is refused all the same.
  const unixType = (entry.attributes >>> 16) & S_IFMT;
  const refused = UNIX_TYPES[unixType];
  if (refused) {
    throw entryError(entry.name, refused);
  }
  if (entry.flags & 0x1) {
    throw entryError(entry.name, 'encrypted entries are not supported');
  }
  const isDirectory = entry.name.endsWith('/') || unixType === 0o040000 || (entry.attributes & 0x10) !== 0;
  if (isDirectory && entry.size !== 0) {
    throw entryError(entry.name, 'a directory entry holds data');
  }
  return isDirectory ? 'directory' : 'file';
}

/** The entry's uncompressed bytes, inflating no more than the budget allows. */
async function entryData(data: Buffer, entry: CentralEntry, budget: ArchiveBudget): Promise<Buffer> {
  const at = entry.localOffset;
  if (at + 30 > data.length || data.readUInt32LE(at) !== LOCAL) {
    throw entryError(entry.name, 'not a valid zip entry (bad local header)');
  }
  const start = at + 30 + data.readUInt16LE(at + 26) + data.readUInt16LE(at + 28);
  const compressed = data.subarray(start, start + entry.compressedSize);
  if (start + entry.compressedSize > data.length) {
    throw entryError(entry.name, 'not a valid zip entry (truncated)');
  }
  let content: Buffer;
  if (entry.method === 0) {
    content = compressed;
  } else if (entry.method === 8) {
    try {
      content = await inflateRawAsync(compressed, { maxOutputLength: Math.max(1, budget.remaining) });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
        throw tooLarge(budget.maxBytes);
      }
      throw entryError(entry.name, `not a valid zip entry (${(e as Error).message})`);
    }
  } else {
    throw entryError(entry.name, `unsupported zip compression method ${entry.method} (use deflate or store)`);
  }
  budget.addBytes(content.length);
  if (content.length !== entry.size || crc32(content) !== entry.crc) {
    throw entryError(entry.name, 'not a valid zip entry (size or CRC-32 mismatch)');
  }
  return Buffer.from(content);
}

/** Every file and directory in a zip archive, counted against `budget` as it is read. */
export async function readZip(data: Buffer, budget: ArchiveBudget): Promise<ArchiveEntry[]> {
  const central = centralDirectory(data, budget);
  // Declared sizes can lie, so inflating is capped too; this only refuses honest big archives early.
  if (central.reduce((n, e) => n + e.size, 0) > budget.maxBytes) {
    throw tooLarge(budget.maxBytes);
  }
  const entries: ArchiveEntry[] = [];
  for (const entry of central) {
    budget.addEntry();
    const kind = entryKind(entry);
    entries.push({ name: entry.name, kind, data: kind === 'file' ? await entryData(data, entry, budget) : Buffer.alloc(0) });
  }
  return entries;
}
