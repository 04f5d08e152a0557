/**
 * Semantic versions for libraries (semver 2.0.0 via the `semver` package): ordering installs,
 * and dependency ranges such as `^1.2.0` or `>=2 <3`.
 */
import semver from 'semver';

/** -1, 0 or 1 as `a` sorts before, with or after `b`; build metadata is ignored. Throws on an invalid version. */
export function compareVersions(a: string, b: string): -1 | 0 | 1 {
  return semver.compare(a, b);
}

/**
 * Whether `version` is in `range`. As npm does, a prerelease satisfies a range only when the
 * range names a prerelease of the same major.minor.patch (`^1.0.0` excludes `1.1.0-beta.1`).
 */
export function satisfies(version: string, range: string): boolean {
  return semver.satisfies(version, range);
}

/** Whether `range` parses as a semver range (`^1.2.0`, `~1.2`, `>=1 <2`, `1.x`, `*`). */
export function isValidRange(range: string): boolean {
  return semver.validRange(range) !== null;
}
