import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

/** The CLI tests run the real bundled command in child processes, so build it first. */
export default function setup(): void {
  execFileSync(process.execPath, [path.join(__dirname, '..', 'scripts', 'build.mjs')], { stdio: 'inherit', cwd: path.join(__dirname, '..') });
}
