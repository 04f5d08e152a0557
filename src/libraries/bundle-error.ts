/** The one error the bundle layer throws: what is wrong, and where (a manifest pointer or an entry). */

/** One problem found in a bundle. */
export interface BundleIssue {
  /** JSON pointer into manifest.json (`/steps/0/name`, `""` for the whole document) or an archive entry name. */
  path: string;
  /** What is wrong there, e.g. `must match pattern "^[a-z][a-z0-9_]{0,63}$"`. */
  message: string;
}

/**
 * A bundle was refused: not an archive, an unsafe or oversized archive, or an invalid manifest.
 * `message` is complete on its own (`manifest.json /steps/1/name: …`, `archive entry "../x": …`);
 * `path` is the pointer or entry name of the first problem and `issues` lists every manifest
 * problem found (a single one for archive problems, which stop reading at once).
 */
export class BundleError extends Error {
  readonly issues: readonly BundleIssue[];

  constructor(
    message: string,
    readonly path?: string,
    issues?: readonly BundleIssue[],
  ) {
    super(message);
    this.name = 'BundleError';
    this.issues = issues ?? (path === undefined ? [] : [{ path, message }]);
  }
}

/** A refusal about one archive entry: `archive entry "<name>": <problem>`. */
export function entryError(name: string, problem: string): BundleError {
  return new BundleError(`archive entry ${JSON.stringify(name)}: ${problem}`, name, [{ path: name, message: problem }]);
}
