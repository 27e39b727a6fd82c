import Ajv from 'ajv';
import { describe, expect, it } from 'vitest';
import schema from '../../../schema/adapter-config.schema.json';
import { SPEC_EXAMPLE } from './helpers';

type S = Record<string, unknown>;

describe('schema/adapter-config.schema.json', () => {
  it('is draft-07 and compiles in strict mode', () => {
    expect(schema.$schema).toBe('http://json-schema.org/draft-07/schema#');
    const ajv = new Ajv({ strict: true, strictRequired: false, allowUnionTypes: true, allErrors: true });
    ajv.addVocabulary(['enumDescriptions', 'markdownDescription', 'markdownEnumDescriptions', 'defaultSnippets']);
    const validate = ajv.compile(schema);
    expect(validate(JSON.parse(SPEC_EXAMPLE)), JSON.stringify(validate.errors)).toBe(true);
    expect(validate({ ...JSON.parse(SPEC_EXAMPLE), nmae: 'x' })).toBe(false);
  });

  it('describes every field and closes every object', () => {
    const missing: string[] = [];
    const walk = (s: S, at: string): void => {
      if (s.$ref) return;
      const types = ([] as unknown[]).concat(s.type ?? []);
      if (types.includes('object') && at !== '#/properties/sweep') {
        expect(s.additionalProperties, at).toBe(false);
      }
      for (const [k, sub] of Object.entries((s.properties ?? {}) as Record<string, S>)) {
        const p = `${at}/properties/${k}`;
        if (!sub.description && !sub.$ref) missing.push(p);
        walk(sub, p);
      }
      if (s.items) walk(s.items as S, `${at}/items`);
    };
    walk(schema as S, '#');
    expect(missing).toEqual([]);
  });
});
