/**
 * Exclusive lock on the embedded database directory. Two PGlite processes on one directory
 * silently lose writes, so a second process must refuse to start. Node has no flock(), so the
 * lock is a file created with O_EXCL holding the owner's pid; a lock whose pid is dead — or is
 * our own pid but not held by this process (a container restarted with the same pid) — is stale
 * and taken over by atomically renaming it aside first.
 */
import { closeSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/** Raised when another live process holds the data directory. */
export class DataDirLockedError extends Error {
  constructor(dir: string, pid: number) {
    super(
      `The data directory ${dir} is in use by another OpsConductor process (pid ${pid}). ` +
        'Stop it first, use another OPSCONDUCTOR_DATA_DIR, or set OPSCONDUCTOR_DATABASE_URL to share a PostgreSQL server.',
    );
    this.name = 'DataDirLockedError';
  }
}

/**
 * Lock files this process holds. A lock is process-wide by nature, so this is the one piece of
 * module state: it tells our own live lock apart from a stale one that happens to carry our pid.
 */
const held = new Set<string>();

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readPid(file: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(file, 'utf8'), 10);
    return Number.isFinite(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

function isLive(file: string, pid: number | undefined): pid is number {
  return pid !== undefined && isAlive(pid) && (pid !== process.pid || held.has(file));
}

/** Moves a stale lock aside; if it turned out to be live after all, puts it back and throws. */
function clearStale(dir: string, file: string): void {
  const aside = `${file}.stale-${process.pid}-${Date.now()}`;
  try {
    renameSync(file, aside);
  } catch {
    return; // someone else cleared it first
  }
  const pid = readPid(aside);
  if (isLive(file, pid)) {
    try {
      linkSync(aside, file); // a fresh lock was moved by mistake: restore it
    } finally {
      rmSync(aside, { force: true });
    }
    throw new DataDirLockedError(dir, pid);
  }
  rmSync(aside, { force: true });
}

/** Takes the lock (clearing a stale one); returns its release function. */
export function lockDataDir(dir: string): () => void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, 'opsconductor.lock');
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      held.add(file);
      return () => {
        held.delete(file);
        rmSync(file, { force: true });
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw e;
      }
      const holder = readPid(file);
      if (isLive(file, holder)) {
        throw new DataDirLockedError(dir, holder);
      }
      clearStale(dir, file);
    }
  }
  throw new Error(`Could not lock the data directory ${dir}`);
}
