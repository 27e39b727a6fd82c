import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, describe, expect, it } from 'vitest';
import { UserInputError } from '../../../src/engine/errors';
import { detectFormat, readRows } from '../../../src/engine/data/readers';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'adapter-lab-readers-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(name: string, content: string | Buffer): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, content);
  return p;
}

describe('detectFormat', () => {
  it('picks by extension and honours an explicit format', () => {
    expect(detectFormat('a.jsonl')).toBe('jsonl');
    expect(detectFormat('a.JSON')).toBe('jsonl');
    expect(detectFormat('a.ndjson')).toBe('jsonl');
    expect(detectFormat('a.csv')).toBe('csv');
    expect(detectFormat('a.tsv')).toBe('tsv');
    expect(detectFormat('a.txt', 'tsv')).toBe('tsv');
    expect(() => detectFormat('a.txt')).toThrow(UserInputError);
  });
});

describe('readRows: JSONL', () => {
  it('reads objects with their line numbers, skips blank lines, flags unparseable lines', () => {
    const f = write('a.jsonl', '{"text":"hi","label":"ham"}\n\n{"text":"yo","label":1,"ok":true,"x":null}\n{oops\n[1,2]\n');
    const { rows, columns } = readRows(f);
    expect(columns).toBeNull();
    expect(rows.map((r) => r.line)).toEqual([1, 3, 4, 5]);
    expect(rows[0]).toEqual({ line: 1, fields: { text: 'hi', label: 'ham' } });
    expect(rows[1].fields).toEqual({ text: 'yo', label: 1, ok: true, x: null });
    expect(rows[2].error).toMatch(/unparseable JSON/);
    expect(rows[3].error).toMatch(/JSON object/);
  });

  it('reads a pretty-printed JSON array with the line each object starts on', () => {
    const f = write('arr.json', '[\n  {"text": "a", "label": 0},\n\n  {\n    "text": "b",\n    "label": 1\n  }\n]\n');
    const { rows } = readRows(f);
    expect(rows.map((r) => [r.line, r.fields.text])).toEqual([
      [2, 'a'],
      [4, 'b'],
    ]);
  });

  it('handles CRLF and a byte-order mark', () => {
    const f = write('crlf.jsonl', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"t":"a"}\r\n{"t":"b"}\r\n')]));
    expect(readRows(f).rows.map((r) => [r.line, r.fields.t])).toEqual([
      [1, 'a'],
      [2, 'b'],
    ]);
  });
});

describe('readRows: CSV', () => {
  it('reports the line a record starts on, also after quoted newlines and blank lines', () => {
    const f = write('a.csv', 'text,label\n"one\ntwo\nthree",ham\n\nplain,spam\n"say ""hi""",ham\nhe said "x" ok,spam\n');
    const { rows, columns } = readRows(f);
    expect(columns).toEqual(['text', 'label']);
    expect(rows.map((r) => r.line)).toEqual([2, 6, 7, 8]);
    expect(rows[0].fields).toEqual({ text: 'one\ntwo\nthree', label: 'ham' });
    expect(rows[2].fields.text).toBe('say "hi"');
    expect(rows[3].fields.text).toBe('he said "x" ok');
  });

  it('counts lines right in CRLF files with multi-line fields', () => {
    const f = write('crlf.csv', 'text,label\r\n"a\r\nb",1\r\n\r\nc,0\r\nd,1\r\n');
    expect(readRows(f).rows.map((r) => [r.line, r.fields.label])).toEqual([
      [2, '1'],
      [5, '0'],
      [6, '1'],
    ]);
  });

  it('names columns "0","1",... without a header, and flags rows with a wrong field count', () => {
    const f = write('nohead.csv', 'hello,1\nworld,0\n');
    expect(readRows(f, { header: false }).rows[1]).toEqual({ line: 2, fields: { '0': 'world', '1': '0' } });
    const g = write('count.csv', 'text,label\na,1\nb,1,extra\n');
    const rows = readRows(g).rows;
    expect(rows[0].error).toBeUndefined();
    expect(rows[1]).toMatchObject({ line: 3, error: 'has 3 fields, the header has 2' });
  });

  it('stops at an unclosed quote, naming the line where the record starts', () => {
    const f = write('unclosed.csv', 'text,label\na,1\n\n"never closed,1\nb,0\n');
    try {
      readRows(f, { displayName: 'data/unclosed.csv' });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(UserInputError);
      expect((e as Error).message).toBe('data/unclosed.csv:4: unclosed quote in the record starting on this line');
    }
  });
});

describe('readRows: CSV, an unclosed quote in the middle of the file', () => {
  // relax_quotes lets a quote that opens a field and never closes run on until some later quote ends it:
  // the rows in between vanish into one field, with the right number of fields, unless the reader looks.
  it('reports the row with the stray quote, at its line, instead of merging it with the rows below', () => {
    const f = write('midquote.csv', 'text,label\n"a",x\n"b never closed,y\n"c",z\n"d",w\n');
    const { rows } = readRows(f, { displayName: 'mid.csv' });
    expect(rows.map((r) => r.line)).toEqual([2, 3, 5]);
    expect(rows[1].error).toBe(
      'unclosed quote: the field starting "\\"b never closed,y\\n\\"c\\"" runs on to line 4, taking in the rows between; close the quote (or double it, "")',
    );
    expect(rows[1].fields).toEqual({});
    // The rows after the merged record are read as usual.
    expect(rows[2].fields).toEqual({ text: 'd', label: 'w' });
  });

  it('also when the run-on field ends in a later row with a different field count', () => {
    const f = write('midquote2.csv', 'text,label\n"b never closed,y\nc,z\nd,"w"\ne,v\n');
    const { rows } = readRows(f);
    expect(rows[0]).toMatchObject({ line: 2, error: expect.stringMatching(/^unclosed quote: .* runs on to line 4/) });
    expect(rows[1]).toEqual({ line: 5, fields: { text: 'e', label: 'v' } });
  });

  it('keeps properly quoted multi-line fields, escaped quotes at the start included', () => {
    const f = write('goodquotes.csv', 'text,label\n"""q"" said\nline two",w\n"plain\nbreak",v\nhe said "x" ok,u\n');
    const { rows } = readRows(f);
    expect(rows.map((r) => r.error)).toEqual([undefined, undefined, undefined]);
    expect(rows.map((r) => r.fields.text)).toEqual(['"q" said\nline two', 'plain\nbreak', 'he said "x" ok']);
  });
});

describe('readRows: TSV (GLUE layouts)', () => {
  it('reads SST-2 style sentence\\tlabel', () => {
    const f = write('sst2.tsv', "sentence\tlabel\nhide new secretions from the parental units \t0\nit 's a charming and often affecting journey . \t1\n");
    const { rows, columns } = readRows(f);
    expect(columns).toEqual(['sentence', 'label']);
    expect(rows).toEqual([
      { line: 2, fields: { sentence: 'hide new secretions from the parental units ', label: '0' } },
      { line: 3, fields: { sentence: "it 's a charming and often affecting journey . ", label: '1' } },
    ]);
  });

  it('reads MRPC with stray double quotes as plain text (no quote processing)', () => {
    const f = write(
      'mrpc.tsv',
      'Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n' +
        '1\t702876\t702977\tAmrozi accused his brother , whom he called " the witness " , of deliberately distorting his evidence .\tReferring to him as only " the witness " , Amrozi accused his brother of deliberately distorting his evidence .\n' +
        '0\t2108705\t2108831\tYucaipa owned Dominick \'s before selling the chain to Safeway in 1998 for $ 2.5 billion .\tYucaipa bought Dominick \'s in 1995 for $ 693 million and sold it to Safeway for $ 1.8 billion in 1998 .\n' +
        '1\t1\t2\t"Unbalanced quote at the start\tand the other\n',
    );
    const { rows } = readRows(f);
    expect(rows).toHaveLength(3);
    expect(rows[0].fields['#1 String']).toContain('" the witness "');
    expect(rows[0].fields.Quality).toBe('1');
    expect(rows[1].fields['#2 ID']).toBe('2108831');
    expect(rows[2]).toEqual({
      line: 4,
      fields: { Quality: '1', '#1 ID': '1', '#2 ID': '2', '#1 String': '"Unbalanced quote at the start', '#2 String': 'and the other' },
    });
  });
});

describe('readRows: missing file', () => {
  it('is a UserInputError naming the file', () => {
    expect(() => readRows(path.join(dir, 'nope.jsonl'), { displayName: 'data/nope.jsonl' })).toThrow(
      /data\/nope\.jsonl: file not found/,
    );
    try {
      readRows(path.join(dir, 'nope.jsonl'));
    } catch (e) {
      expect(e).toBeInstanceOf(UserInputError);
      expect((e as UserInputError).location?.file).toBe(path.join(dir, 'nope.jsonl'));
    }
  });
});
