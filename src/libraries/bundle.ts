/**
 * Library bundles: a .tar.gz or .zip holding manifest.json and the scripts its steps run, either
 * at the root or under one top-level directory. Reading is all-or-nothing and touches nothing
 * outside memory: the size limit holds while decompressing (bombs stop at the limit), entry paths
 * must stay inside the bundle, links and special files are refused, and the manifest is validated
 * before anyone can write a byte of it anywhere. No database, no HTTP.
 */
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { gunzip, gzip } from 'node:zlib';

import { ArchiveBudget, type ArchiveEntry, formatBytes, normalizeEntryPath, tooLarge } from './archive.ts';
import { BundleError, entryError } from './bundle-error.ts';
import { checkManifest, type LibraryManifest, manifestError, scriptReferences } from './manifest.ts';
import { readTar, writeTar } from './tar.ts';
import { readZip } from './zip.ts';

export { BundleError, type BundleIssue } from './bundle-error.ts';
export { checkManifest, type LibraryManifest, type LibraryParameter, type LibraryStep, type StepImplementation } from './manifest.ts';

const gunzipAsync = promisify(gunzip);
const gzipAsync = promisify(gzip);

/** Largest bundle, compressed or not (10 MiB). */
export const MAX_BUNDLE_BYTES = 10 * 1024 * 1024;
const MANIFEST = 'manifest.json';
/** Zip tools on macOS add this directory of resource forks; it is never part of a library. */
const MACOS_METADATA = '__MACOSX';

/** A bundle read and validated whole. */
export interface Bundle {
  manifest: LibraryManifest;
  /** Every file but manifest.json, by canonical relative path (`scripts/run.sh`). */
  files: Map<string, Buffer>;
  /** SHA-256 of the bundle as given, in hex: recorded with the install and shown to users. */
  sha256: string;
  /** Size of the bundle as given. */
  bytes: number;
}

/** The archive's entries, by format from the magic bytes: gzip (a .tar.gz) or zip. */
async function readEntries(data: Buffer, budget: ArchiveBudget): Promise<ArchiveEntry[]> {
  if (data[0] === 0x1f && data[1] === 0x8b) {
    // The tar stream carries a header (and maybe a pax header) per entry on top of the files.
    const cap = budget.maxBytes + budget.maxEntries * 3 * 512 + 1024;
    let tar: Buffer;
    try {
      tar = await gunzipAsync(data, { maxOutputLength: cap });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
        throw tooLarge(budget.maxBytes);
      }
      throw new BundleError(`not a valid gzip file (${(e as Error).message})`);
    }
    return readTar(tar, budget);
  }
  if (data.length >= 4 && data.readUInt32LE(0) === 0x04034b50) {
    return readZip(data, budget);
  }
  if (data.length >= 4 && data.readUInt32LE(0) === 0x06054b50) {
    throw new BundleError(`${MANIFEST} is missing (the zip archive is empty)`, MANIFEST);
  }
  throw new BundleError('not a bundle: expected a .tar.gz or .zip archive');
}

/** Entries as files by canonical path, refusing duplicates and a file that is also a directory. */
function canonicalFiles(entries: readonly ArchiveEntry[]): { files: Map<string, Buffer>; directories: Set<string> } {
  const files = new Map<string, Buffer>();
  const directories = new Set<string>();
  for (const entry of entries) {
    const path = normalizeEntryPath(entry.name);
    if (path === '' || path === MACOS_METADATA || path.startsWith(`${MACOS_METADATA}/`)) {
      continue;
    }
    if (files.has(path) || (entry.kind === 'file' && directories.has(path))) {
      throw entryError(entry.name, 'duplicate path');
    }
    if (entry.kind === 'directory') {
      directories.add(path);
    } else {
      files.set(path, entry.data);
    }
  }
  for (const path of files.keys()) {
    const segments = path.split('/');
    for (let i = 1; i < segments.length; i++) {
      const parent = segments.slice(0, i).join('/');
      if (files.has(parent)) {
        throw entryError(path, `"${parent}" is a file, not a directory`);
      }
    }
  }
  return { files, directories };
}

/** The bundle's files with manifest.json at the root: as they are, or out of their single top-level directory. */
function rootedFiles(entries: readonly ArchiveEntry[]): Map<string, Buffer> {
  const { files, directories } = canonicalFiles(entries);
  if (files.has(MANIFEST)) {
    return files;
  }
  const tops = new Set([...files.keys(), ...directories].map((p) => p.split('/')[0] as string));
  const [top] = tops;
  if (tops.size !== 1 || top === undefined || !files.has(`${top}/${MANIFEST}`)) {
    throw new BundleError(`${MANIFEST} is missing (expected at the root of the archive or in its single top-level directory)`, MANIFEST);
  }
  return new Map([...files].map(([path, data]) => [path.slice(top.length + 1), data]));
}

/** The manifest file's JSON value. */
function parseManifest(data: Buffer): unknown {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(data);
  } catch {
    throw new BundleError(`${MANIFEST}: not valid UTF-8`, MANIFEST);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new BundleError(`${MANIFEST}: not valid JSON (${(e as Error).message})`, MANIFEST);
  }
}

/** Refuses a manifest whose script files are not among `files`. */
function checkScripts(manifest: LibraryManifest, files: ReadonlyMap<string, Buffer>): void {
  const missing = scriptReferences(manifest)
    .filter((ref) => !files.has(ref.file))
    .map((ref) => ({ path: ref.path, message: `"${ref.file}" is not in the bundle` }));
  if (missing.length > 0) {
    throw manifestError(missing);
  }
}

/**
 * Reads and validates a bundle (.tar.gz or .zip, told apart by magic bytes). Throws a
 * {@link BundleError} for anything unsafe or invalid: an unknown format, more than 1,000 entries,
 * more than `maxBytes` (default {@link MAX_BUNDLE_BYTES}) compressed or uncompressed, an entry
 * path that is absolute, uses `..`, a backslash or a drive letter, any link, device or FIFO,
 * duplicate paths, a missing or invalid manifest.json, or a script file the bundle lacks.
 */
export async function readBundle(data: Buffer, options: { maxBytes?: number } = {}): Promise<Bundle> {
  const maxBytes = options.maxBytes ?? MAX_BUNDLE_BYTES;
  if (data.length > maxBytes) {
    throw new BundleError(`bundle is ${data.length} bytes; the limit is ${formatBytes(maxBytes)}`);
  }
  const files = rootedFiles(await readEntries(data, new ArchiveBudget(maxBytes)));
  const manifest = checkManifest(parseManifest(files.get(MANIFEST) as Buffer));
  files.delete(MANIFEST);
  checkScripts(manifest, files);
  return { manifest, files, sha256: createHash('sha256').update(data).digest('hex'), bytes: data.length };
}

/**
 * A .tar.gz of `manifest` (as manifest.json) and `files` at the root, e.g. to serve a catalog
 * library. Deterministic — same input, same bytes — so a library's SHA-256 is stable. Throws a
 * {@link BundleError} for whatever {@link readBundle} would refuse.
 */
export async function writeBundle(manifest: LibraryManifest, files: ReadonlyMap<string, Buffer>): Promise<Buffer> {
  checkManifest(manifest);
  const canonical = canonicalFiles([...files].map(([name, data]) => ({ name, kind: 'file', data }))).files;
  if (canonical.has(MANIFEST)) {
    throw entryError(MANIFEST, 'comes from the manifest argument; leave it out of files');
  }
  checkScripts(manifest, canonical);
  const budget = new ArchiveBudget(MAX_BUNDLE_BYTES);
  const content = new Map([...canonical, [MANIFEST, Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`)]]);
  for (const data of content.values()) {
    budget.addEntry();
    budget.addBytes(data.length);
  }
  return gzipAsync(writeTar(content), { level: 9 });
}
