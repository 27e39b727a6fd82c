/**
 * The extension host's entry point for the integration suite (extensionTestsPath): runs the bundled
 * *.integration.js files next to this one with mocha, and rejects when a test fails.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Mocha from 'mocha';

export function run(): Promise<void> {
  const mocha = new Mocha({ ui: 'bdd', color: true, timeout: 10 * 60_000 });
  for (const f of fs.readdirSync(__dirname).filter((n) => n.endsWith('.integration.js')).sort()) mocha.addFile(path.join(__dirname, f));
  return new Promise((resolve, reject) => {
    const runner = mocha.run((failures) => {
      // A summary beside the bundle as well, for runners that do not see the extension host's output.
      fs.writeFileSync(path.join(__dirname, 'results.json'), JSON.stringify({ ...runner.stats, passed, failed }, null, 2));
      if (failures) reject(new Error(`${failures} integration test(s) failed`));
      else resolve();
    });
    const passed: string[] = [];
    const failed: string[] = [];
    runner.on('pass', (test) => passed.push(test.fullTitle()));
    runner.on('fail', (test, err: Error) => failed.push(`${test.fullTitle()}: ${err.message}`));
  });
}
