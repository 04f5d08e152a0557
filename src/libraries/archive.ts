/**
 * What the tar and zip readers share: the entries they yield, the limits they enforce while
 * reading (so a bomb stops as soon as it passes the limit, not after), and the path rules every
 * entry name must pass before it can become a key in a bundle.
 */
import { BundleError, entryError } from './bundle-error.ts';

/** Entries an archive may hold (files and directories, not counting tar's metadata headers). */
export const MAX_ENTRIES = 1000;

/** A file or directory read from an archive, under its name as stored. */
export interface ArchiveEntry {
  name: string;
  kind: 'file' | 'directory';
  data: Buffer;
}

/** Counts entries and uncompressed file bytes, throwing as soon as either limit is passed. */
export class ArchiveBudget {
  private entries = 0;
  private bytes = 0;

  constructor(
    readonly maxBytes: number,
    readonly maxEntries = MAX_ENTRIES,
  ) {}

  /** File bytes still allowed. */
  get remaining(): number {
    return this.maxBytes - this.bytes;
  }

  /** Counts one more entry. */
  addEntry(): void {
    this.entries += 1;
    if (this.entries > this.maxEntries) {
      throw new BundleError(`archive has more than ${this.maxEntries} entries`);
    }
  }

  /** Counts `size` more uncompressed bytes. */
  addBytes(size: number): void {
    this.bytes += size;
    if (this.bytes > this.maxBytes) {
      throw tooLarge(this.maxBytes);
    }
  }
}

/** The refusal for content past the size limit. */
export function tooLarge(maxBytes: number): BundleError {
  return new BundleError(`bundle is larger than ${formatBytes(maxBytes)} uncompressed`);
}

/** `10 MiB` for whole mebibytes, else a byte count. */
export function formatBytes(bytes: number): string {
  return bytes % (1024 * 1024) === 0 ? `${bytes / (1024 * 1024)} MiB` : `${bytes} bytes`;
}

/**
 * The canonical relative form of an entry name (`./a//b/` → `a/b`), `''` for the archive root,
 * or a refusal naming the entry. `..` is refused even where it would stay inside the bundle: no
 * legitimate bundle needs it, and one rule is easier to trust than a resolver.
 */
export function normalizeEntryPath(name: string): string {
  const problem = pathProblem(name);
  if (problem) {
    throw entryError(name, problem);
  }
  return name
    .split('/')
    .filter((s) => s !== '' && s !== '.')
    .join('/');
}

/** Why `name` cannot be a path inside a bundle, or undefined when it can. */
export function pathProblem(name: string): string | undefined {
  if (name.length === 0) {
    return 'empty path';
  }
  if (name.length > 1024) {
    return 'path is longer than 1024 characters';
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) {
    return 'path contains control characters';
  }
  if (name.includes('\\')) {
    return 'backslashes are not allowed in paths';
  }
  if (/^[A-Za-z]:/.test(name)) {
    return 'drive letters are not allowed in paths';
  }
  if (name.startsWith('/')) {
    return 'absolute paths are not allowed';
  }
  const segments = name.split('/');
  if (segments.includes('..')) {
    let depth = 0;
    for (const segment of segments) {
      depth += segment === '..' ? -1 : segment === '' || segment === '.' ? 0 : 1;
      if (depth < 0) {
        return 'path escapes the bundle';
      }
    }
    return '".." segments are not allowed in paths';
  }
  return undefined;
}
