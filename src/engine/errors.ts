/**
 * Errors the user can act on. The CLI maps them to exit code 2 (bad input) and prints the message
 * alone, without a stack trace; anything else is a bug or a failed run (exit code 1).
 */
export class UserInputError extends Error {
  constructor(
    message: string,
    /** Where the problem is, when known: a file, and a line or a JSON pointer to a field. */
    readonly location?: { file?: string; line?: number; field?: string },
  ) {
    super(message);
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
