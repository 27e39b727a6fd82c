/**
 * Errors the user can act on. The CLI maps them to exit code 2 (bad input) and prints the message
 * alone, without a stack trace; anything else is a bug or a failed run (exit code 1).
 *
 * The location is given once, as data: the constructor puts it in front of the message (`file:line: what`),
 * so no caller writes it into the text and no reporter adds it again. `detail` is the bare text, for places
 * that show the location apart (editor diagnostics).
 */
export class UserInputError extends Error {
  /** The problem without its location. */
  readonly detail: string;
  constructor(
    detail: string,
    /** Where the problem is, when known: a file, and a line or a JSON pointer to a field. */
    readonly location?: { file?: string; line?: number; field?: string },
    /** The detail already names its locations (a ConfigError's list of problems, each with its own). */
    options?: { locatedInDetail?: boolean },
  ) {
    super(options?.locatedInDetail ? detail : locate(detail, location));
    this.detail = detail;
    this.name = 'UserInputError';
  }
}

/** Prefixes a message with "file:line: " or "file (field): " when a location is known. */
export function locate(message: string, location?: { file?: string; line?: number; field?: string }): string {
  if (!location?.file) return location?.field ? `${location.field}: ${message}` : message;
  if (location.line !== undefined) return `${location.file}:${location.line}: ${message}`;
  if (location.field) return `${location.file} (${location.field}): ${message}`;
  return `${location.file}: ${message}`;
}
