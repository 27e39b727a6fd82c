/**
 * Every test file gets its own temp root, removed after the file: the tests make thousands of temp folders
 * (models, runs, workspaces; the CLI processes they start make more), and without this a few runs of `npm test`
 * left gigabytes in the system's temp folder. TMPDIR is what os.tmpdir() reads at each call and what child
 * processes inherit, so every mkdtemp of the file and of its processes lands under the root.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll } from 'vitest';

/** The system's temp folder (where files outlive one test file: the Slurm test cluster's). */
process.env.ADAPTER_LAB_TEST_TMP_PARENT ??= os.tmpdir();
const root = fs.mkdtempSync(path.join(process.env.ADAPTER_LAB_TEST_TMP_PARENT, 'adapter-lab-vitest-'));
process.env.TMPDIR = root;

afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
});
