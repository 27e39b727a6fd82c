import * as fs from 'node:fs';
import * as path from 'node:path';

/** An errno code in words a user can act on ("no space left on device (ENOSPC)"). */
export function describeIoError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const words: Record<string, string> = {
    ENOSPC: 'no space left on device',
    EDQUOT: 'disk quota exceeded',
    EROFS: 'read-only file system',
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    EIO: 'input/output error',
    ENOENT: 'no such file or folder',
    ENOTDIR: 'a path component is not a folder',
    EISDIR: 'is a folder',
    ELOOP: 'is a symbolic link',
  };
  if (e?.code && words[e.code]) return `${words[e.code]} (${e.code})`;
  return e?.message ?? String(err);
}

/** A failed write, naming the file (the errno code stays on `code`). */
export class FileWriteError extends Error {
  readonly code: string | undefined;
  constructor(
    readonly file: string,
    override readonly cause: unknown,
  ) {
    super(`cannot write ${file}: ${describeIoError(cause)}`);
    this.name = 'FileWriteError';
    this.code = (cause as NodeJS.ErrnoException)?.code;
  }
}

/** The temp files writeFileAtomic leaves when killed mid-write: `.<name>.<pid>.<ms>.tmp`; returns the pid. */
export function atomicTempOwner(fileName: string): number | null {
  const m = /^\..+\.(\d+)\.\d+\.tmp$/.exec(fileName);
  return m ? Number(m[1]) : null;
}

let tempCounter = 0;

/**
 * Writes a file so that readers see either the old content or the new, never half of it:
 * write a temp file in the same folder, fsync it, rename over the target. On any failure the temp file is
 * removed (a full disk must not keep the space of a half-written file) and a FileWriteError names the file.
 * The rename replaces a symbolic link at `file` rather than writing through it.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now() + tempCounter++}.tmp`);
  let fd: number | undefined;
  try {
    fs.mkdirSync(dir, { recursive: true });
    // 'wx': a fresh file, never an existing one or a link planted under the temp name.
    fd = fs.openSync(tmp, 'wx');
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    for (let off = 0; off < bytes.length; ) off += fs.writeSync(fd, bytes, off, bytes.length - off);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, file);
  } catch (err) {
    if (fd !== undefined) {
      try {
        fs.closeSync(fd);
      } catch {
        /* already failing */
      }
    }
    fs.rmSync(tmp, { force: true });
    throw err instanceof FileWriteError ? err : new FileWriteError(file, err);
  }
}

export function writeJsonAtomic(file: string, value: unknown): void {
  writeFileAtomic(file, JSON.stringify(value, null, 2) + '\n');
}

/** Appends one JSON line; a crash can at worst leave a torn last line, which readers skip. */
export function appendJsonLine(file: string, value: unknown): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.appendFileSync(file, JSON.stringify(value) + '\n');
}
