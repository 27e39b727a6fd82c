/**
 * Validation of `*.adapter.json` text for editor diagnostics: the engine's own loader (schema + semantic
 * checks, the same ones `adapter-lab train` runs), applied to the editor's text rather than the file on disk.
 * No vscode import.
 */
import * as path from 'node:path';
import { ConfigError, parseConfigText, resolveInternal, type ConfigProblem } from '../../engine/config/load';
import { UserInputError } from '../../engine/errors';

/** The problems of a config's text; [] when it is valid. */
export function validateConfigText(text: string, file: string): ConfigProblem[] {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  try {
    const parsed = parseConfigText(text, file);
    resolveInternal(parsed.value, path.resolve(file), path.dirname(path.resolve(file)), file, parsed.locate);
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    if (err instanceof UserInputError) return [{ file, line: err.location?.line, field: err.location?.field, message: err.detail }];
    return [{ file, line: 1, message: (err as Error).message }];
  }
}

/** Where a problem is in the text, 0-based: its whole line (without indentation) unless a column is known. */
export function problemRange(text: string, p: ConfigProblem): { line: number; start: number; end: number } {
  const lines = text.split(/\r?\n/);
  const line = Math.min(Math.max((p.line ?? 1) - 1, 0), Math.max(lines.length - 1, 0));
  const content = lines[line] ?? '';
  if (p.column !== undefined) {
    const start = Math.min(Math.max(p.column - 1, 0), content.length);
    // From the column to the end of the token there (at least one character).
    const m = /^("(?:[^"\\]|\\.)*"|[^\s,:}\]]+)/.exec(content.slice(start));
    return { line, start, end: start + Math.max(1, m ? m[0].length : 1) };
  }
  const start = content.length - content.trimStart().length;
  const end = content.trimEnd().length;
  return { line, start, end: end > start ? end : start + 1 };
}

/** The diagnostic text of a problem: the field and what is wrong (the location is the range). */
export function problemMessage(p: ConfigProblem): string {
  return p.field ? `${p.field}: ${p.message}` : p.message;
}
