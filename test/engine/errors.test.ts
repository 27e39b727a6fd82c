import { describe, expect, it } from 'vitest';
import { UserInputError } from '../../src/engine/errors';

describe('UserInputError: the location is given once, as data', () => {
  it('puts file:line (or file (field), or field) in front of the bare detail, once', () => {
    const e = new UserInputError('missing label in field "label"', { file: 'd.csv', line: 9, field: 'label' });
    expect(e.message).toBe('d.csv:9: missing label in field "label"');
    expect(e.detail).toBe('missing label in field "label"');
    expect(new UserInputError('bad', { file: 'm/config.json', field: 'hidden_size' }).message).toBe('m/config.json (hidden_size): bad');
    expect(new UserInputError('must be below 1', { field: 'task.split' }).message).toBe('task.split: must be below 1');
    expect(new UserInputError('plain').message).toBe('plain');
  });

  it('leaves a detail that names its own locations (a list of problems) as it is', () => {
    const e = new UserInputError('a.json:3: x: bad\na.json:5: y: bad', { file: 'a.json', line: 3 }, { locatedInDetail: true });
    expect(e.message).toBe('a.json:3: x: bad\na.json:5: y: bad');
    expect(e.location).toEqual({ file: 'a.json', line: 3 });
  });
});
