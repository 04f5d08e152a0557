/** LIKE/ILIKE helpers for user-supplied search text. */

/** `%text%` with `\`, `%` and `_` escaped, so search text is matched literally. */
export function containsPattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}
