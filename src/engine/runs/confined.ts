/**
 * File access confined to one folder (a run folder, an adapter folder being exported): every read, write,
 * append, listing and deletion goes through here, and none of them follows a symbolic link. A run folder can
 * come from a cloned repository or a shared runs folder, where `checkpoint/` may be a link to somebody's model
 * folder: following it would let the stale-checkpoint cleanup delete files there, metrics be appended to
 * another file, an adapter overwrite another. So a link anywhere on the way is refused with an error naming it.
 *
 * The checks look at what is on disk before each operation; the final component is opened with O_NOFOLLOW
 * (appends, reads) or replaced by rename (writes), so a link planted there is never written through.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserInputError } from '../errors';
import { atomicTempOwner, FileWriteError, describeIoError, writeFileAtomic } from '../util/atomicFile';

/** A symbolic link where a run folder (or an exported adapter) must hold a real file or folder. */
export class LinkRefusedError extends UserInputError {
  constructor(
    readonly link: string,
    root: string,
  ) {
    super(
      `${link} is a symbolic link; Adapter Lab does not follow links inside ${root} (it could read, write or delete files outside it). ` +
        'Replace the link with a real file or folder.',
      { file: link },
    );
    this.name = 'LinkRefusedError';
  }
}

/** An I/O failure on a file of a confined folder, naming the file (relative) and the folder. */
export class ConfinedIoError extends Error {
  readonly code: string | undefined;
  constructor(
    action: 'write' | 'read' | 'delete' | 'append to' | 'list' | 'create',
    readonly file: string,
    readonly root: string,
    override readonly cause: unknown,
    what = 'run folder',
  ) {
    super(`cannot ${action} ${path.relative(root, file) || '.'} in ${what} ${root}: ${describeIoError(cause instanceof FileWriteError ? cause.cause : cause)}`);
    this.name = 'ConfinedIoError';
    this.code = ((cause instanceof FileWriteError ? cause.cause : cause) as NodeJS.ErrnoException | undefined)?.code;
  }
}

/**
 * `root/rel` as an absolute path, refusing a `rel` that leaves root (absolute, or with `..` above it), and
 * refusing any existing symbolic link among the components below root (the last one included).
 */
export function confinedPath(root: string, rel: string): string {
  const base = path.resolve(root);
  const abs = path.resolve(base, rel);
  const inside = path.relative(base, abs);
  if (path.isAbsolute(rel) || inside.startsWith('..') || path.isAbsolute(inside)) {
    throw new UserInputError(`${rel}: a path outside ${base}`, { file: abs });
  }
  let cur = base;
  for (const part of inside ? inside.split(path.sep) : []) {
    cur = path.join(cur, part);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(cur);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') break; // the rest does not exist yet
      throw err;
    }
    if (st.isSymbolicLink()) throw new LinkRefusedError(cur, base);
  }
  return abs;
}

/** Makes the folder `root/rel` (and those above it, below root), none of them a link. */
export function ensureConfinedDir(root: string, rel: string): string {
  const abs = confinedPath(root, rel);
  try {
    fs.mkdirSync(abs, { recursive: true });
  } catch (err) {
    throw new ConfinedIoError('create', abs, root, err);
  }
  // A link could have appeared between the check and mkdir (mkdir -p accepts a link to a folder).
  return confinedPath(root, rel);
}

/** Writes `root/rel` atomically (temp file + rename, the temp removed on failure). */
export function writeConfined(root: string, rel: string, data: string | Uint8Array): string {
  ensureConfinedDir(root, path.dirname(rel));
  const abs = confinedPath(root, rel);
  try {
    writeFileAtomic(abs, data);
  } catch (err) {
    throw new ConfinedIoError('write', abs, root, err);
  }
  return abs;
}

/** Appends to `root/rel` (created if absent), never through a link. */
export function appendConfined(root: string, rel: string, data: string): void {
  ensureConfinedDir(root, path.dirname(rel));
  const abs = confinedPath(root, rel);
  let fd: number | undefined;
  try {
    fd = fs.openSync(abs, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, 0o644);
    const bytes = Buffer.from(data);
    for (let off = 0; off < bytes.length; ) off += fs.writeSync(fd, bytes, off, bytes.length - off);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new LinkRefusedError(abs, path.resolve(root));
    throw new ConfinedIoError('append to', abs, root, err);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Reads `root/rel`; null when it does not exist. */
export function readConfined(root: string, rel: string): Buffer | null {
  const abs = confinedPath(root, rel);
  let fd: number | undefined;
  try {
    fd = fs.openSync(abs, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    return fs.readFileSync(fd);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code === 'ELOOP') throw new LinkRefusedError(abs, path.resolve(root));
    throw new ConfinedIoError('read', abs, root, err);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Deletes the file `root/rel` (a link there is refused, not deleted: it may be someone's on purpose). */
export function removeConfined(root: string, rel: string): void {
  const abs = confinedPath(root, rel);
  try {
    fs.rmSync(abs, { force: true });
  } catch (err) {
    throw new ConfinedIoError('delete', abs, root, err);
  }
}

/** The names in the folder `root/rel`; [] when it does not exist. */
export function listConfined(root: string, rel: string): string[] {
  const abs = confinedPath(root, rel);
  try {
    return fs.readdirSync(abs);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new ConfinedIoError('list', abs, root, err);
  }
}

/** Throws LinkRefusedError for the first symbolic link found in the tree under `dir` (dir itself included). */
export function assertNoLinksInTree(dir: string, root = dir): void {
  const st = fs.lstatSync(dir);
  if (st.isSymbolicLink()) throw new LinkRefusedError(dir, root);
  if (!st.isDirectory()) return;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isSymbolicLink()) throw new LinkRefusedError(p, root);
    if (e.isDirectory()) assertNoLinksInTree(p, root);
  }
}

/**
 * Copies the tree `src` to `dest` (which must not exist), regular files and folders only: a symbolic link, or
 * anything that is neither file nor folder, is refused before anything is copied.
 */
export function copyTreeRefusingLinks(src: string, dest: string): void {
  assertNoLinksInTree(src);
  const copy = (from: string, to: string): void => {
    fs.mkdirSync(to);
    for (const e of fs.readdirSync(from, { withFileTypes: true })) {
      const a = path.join(from, e.name);
      const b = path.join(to, e.name);
      if (e.isDirectory()) copy(a, b);
      else if (e.isFile()) fs.copyFileSync(a, b, fs.constants.COPYFILE_EXCL);
      else throw new UserInputError(`${a} is neither a file nor a folder; not copying it`, { file: a });
    }
  };
  copy(src, dest);
}

/**
 * Removes the temp files that writeFileAtomic leaves behind when its process is killed mid-write, anywhere
 * under `root` (links are not followed), when the process that wrote them is gone. Returns their paths.
 */
export function removeStaleTempFiles(root: string, isAlive: (pid: number) => boolean): string[] {
  const removed: string[] = [];
  const walk = (dir: string): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        const pid = atomicTempOwner(e.name);
        if (pid !== null && (pid === process.pid ? false : !isAlive(pid))) {
          fs.rmSync(p, { force: true });
          removed.push(p);
        }
      }
    }
  };
  walk(path.resolve(root));
  return removed;
}
