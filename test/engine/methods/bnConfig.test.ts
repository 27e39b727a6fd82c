import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { bnConfig, BN_FLOAT_KEYS, PFEIFFER_PLACEMENT } from '../../../src/engine/methods/bottleneck';
import { pythonJson } from '../../../src/engine/model/adapterIo';
import { bottleneckSize, loadConfig } from '../../../src/engine/config/load';
import { ResolvedConfig } from '../../../src/engine/config/types';
import { runPython } from '../../helpers/python';
import { tempDir } from '../../helpers/fixtures';

const base = { type: 'pfeiffer' as const, nonLinearity: 'relu' as const, initStd: 0.01, trainLayerNorm: false, leaveOut: [] as number[], dropLowest: 0 };

describe('the exported reduction_factor', () => {
  it('rebuilds every bottleneck size 1..d (d = 64, 256, 768), and every integer reduction factor trains the size it declares, under Python int(d // rf)', () => {
    // Written as adapter_config.json writes it (pythonJson), read back by Python's json, checked with AdapterHub's expression.
    const cases: { d: number; m: number; text: string }[] = [];
    for (const d of [64, 256, 768]) {
      for (let m = 1; m <= d; m++) cases.push({ d, m, text: pythonJson(bnConfig({ ...base, bottleneck: m }, d, PFEIFFER_PLACEMENT), BN_FLOAT_KEYS) });
      for (let rf = 1; rf <= d; rf++) {
        const method = { ...base, reductionFactor: rf } as unknown as ResolvedConfig['method'];
        cases.push({ d, m: bottleneckSize(method, 0, d), text: pythonJson(bnConfig(method, d, PFEIFFER_PLACEMENT), BN_FLOAT_KEYS) });
        // Training's rule is Python's: int(d // rf) for an integer rf.
        expect(bottleneckSize(method, 0, d)).toBe(Math.max(1, Math.floor(d / rf)));
      }
    }
    const file = path.join(tempDir(), 'cases.json');
    fs.writeFileSync(file, JSON.stringify(cases.map((c) => [c.d, c.m, c.text])));
    const out = runPython(
      `
import json, sys
bad = []
for d, m, text in json.load(open(sys.argv[1])):
    config = json.loads(text)
    rf = config["reduction_factor"]
    assert "architecture" not in config and isinstance(config["scaling"], float)
    built = int(d // rf)
    if built < 1: built = 1
    if built != m: bad.append((d, m, rf, built))
print(json.dumps({"checked": len(json.load(open(sys.argv[1]))), "bad": bad[:10]}))
`,
      [file],
    );
    const result = JSON.parse(out);
    expect(result.bad).toEqual([]);
    expect(result.checked).toBe(2 * (64 + 256 + 768));
  });
});

describe('task names', () => {
  it('refuses a task name that PyTorch cannot use as a module name, naming the field', () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'train.jsonl'), '{"text": "a", "label": "x"}\n');
    const file = path.join(dir, 'bad.adapter.json');
    fs.writeFileSync(file, JSON.stringify({ name: 'bad', task: { name: 'sst.2', type: 'classification', train: 'train.jsonl', textField: 'text', labelField: 'label' }, model: 'builtin:tiny-bert', method: { type: 'pfeiffer' } }, null, 2));
    expect(() => loadConfig(file)).toThrow(/task\.name.*PyTorch module names cannot contain "\."/s);
  });
});
