/**
 * The file store: the local side of sftp steps. Every path is confined to the store's root
 * (absolute paths and `..` are refused), uploads are size-capped and land atomically.
 */
import { randomUUID } from 'node:crypto';
import { createReadStream, type Stats } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { AppError, NotFoundError, ValidationError } from '../../errors.ts';
import type { Actor } from '../../shared/roles.ts';
import { resolveInside, UnsafePathError } from '../../shared/safe-path.ts';
import type { AuditService } from '../audit/index.ts';

/** One stored file. */
export interface StoredFile {
  path: string;
  size: number;
  modified_at: string;
}

/** Filesystem errors that mean "this path cannot hold a file": the caller's mistake, a 400. */
const PATH_ERRORS = new Set(['EISDIR', 'ENOTDIR', 'ENAMETOOLONG', 'EEXIST', 'ENOENT']);

/** Rethrows a filesystem refusal of `path` as a ValidationError; anything else unchanged. */
function refused(path: string) {
  return (e: unknown): never => {
    const code = (e as NodeJS.ErrnoException).code;
    if (code && PATH_ERRORS.has(code)) {
      throw new ValidationError(`path "${path}" cannot be stored (${code === 'ENAMETOOLONG' ? 'name too long' : 'a file or directory is in the way'})`, 'path');
    }
    throw e;
  };
}

/** Builds the store over `root`. */
export function createFilesService(deps: { root: string; maxUploadBytes: number; audit: AuditService }) {
  const { root, maxUploadBytes, audit } = deps;

  function locate(path: string): string {
    try {
      return resolveInside(root, path);
    } catch (e) {
      throw e instanceof UnsafePathError ? new ValidationError(e.message, 'path') : e;
    }
  }

  async function statFile(full: string, path: string): Promise<Stats> {
    const info = await stat(full).catch(() => undefined);
    if (!info?.isFile()) {
      throw new NotFoundError(`File ${path} not found`);
    }
    return info;
  }

  async function walk(dir: string): Promise<StoredFile[]> {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    const files = await Promise.all(
      entries.map(async (entry) => {
        const full = join(dir, entry.name);
        if (entry.isDirectory()) {
          return walk(full);
        }
        if (!entry.isFile() || entry.name.startsWith('.upload-')) {
          return [];
        }
        const info = await stat(full);
        return [{ path: relative(root, full), size: info.size, modified_at: info.mtime.toISOString() }];
      }),
    );
    return files.flat();
  }

  return {
    root,

    async list(): Promise<StoredFile[]> {
      return (await walk(root)).sort((a, b) => a.path.localeCompare(b.path));
    },

    /** Streams `body` into `path` (replacing it); a body over the cap is a 413 and leaves nothing. */
    async put(actor: Actor, path: string, body: Readable): Promise<StoredFile> {
      if (path.endsWith('/')) {
        throw new ValidationError('path must name a file, not a directory', 'path');
      }
      const full = locate(path);
      await mkdir(dirname(full), { recursive: true }).catch(refused(path));
      const temp = join(dirname(full), `.upload-${randomUUID()}`);
      let size = 0;
      try {
        // Opened before streaming: a write stream opening the file itself could still create it
        // after a body over the cap had failed the upload and the temp file had been removed.
        const file = await open(temp, 'wx', 0o600);
        await pipeline(
          body,
          async function* (source) {
            for await (const chunk of source) {
              size += (chunk as Buffer).length;
              if (size > maxUploadBytes) {
                throw new AppError(`The file is larger than ${maxUploadBytes} bytes`, { code: 'payload_too_large', status: 413, field: 'body' });
              }
              yield chunk;
            }
          },
          file.createWriteStream(),
        );
        await rename(temp, full);
      } catch (e) {
        await rm(temp, { force: true });
        return refused(path)(e);
      }
      await audit.record(actor, 'file.put', { type: 'file', id: path }, { size });
      const info = await stat(full);
      return { path, size: info.size, modified_at: info.mtime.toISOString() };
    },

    async open(path: string): Promise<{ stream: Readable; size: number }> {
      const full = locate(path);
      const info = await statFile(full, path);
      return { stream: createReadStream(full), size: info.size };
    },

    async remove(actor: Actor, path: string): Promise<void> {
      const full = locate(path);
      await statFile(full, path);
      await rm(full);
      await audit.record(actor, 'file.delete', { type: 'file', id: path });
    },
  };
}

/** The file store. */
export type FilesService = ReturnType<typeof createFilesService>;
