/**
 * Dependencies between installed libraries, seen from the library being changed: which installed
 * libraries declare a range on it, and which of those ranges a new version (or its removal) breaks.
 * Install checks the other direction (the new version's own dependencies) in the service.
 */
import { satisfies } from '../../libraries/semver.ts';

/** An installed library as the check reads it. */
interface Installed {
  id: string;
  manifest: unknown;
}

/** An installed library whose dependency on the changed library would no longer hold. */
export interface Dependent {
  id: string;
  range: string;
}

/**
 * Installed libraries (other than `id` itself) that depend on `id` and would be broken by it
 * becoming `version` — every one of them when `version` is undefined (uninstall).
 */
export function brokenDependents(installed: readonly Installed[], id: string, version: string | undefined): Dependent[] {
  return installed.flatMap((lib) => {
    const range = (lib.manifest as { dependencies?: Record<string, string> }).dependencies?.[id];
    if (lib.id === id || range === undefined || (version !== undefined && satisfies(version, range))) {
      return [];
    }
    return [{ id: lib.id, range }];
  });
}

/** "a (needs ^1.0.0), b (needs >=2)" for messages. */
export const describeDependents = (dependents: readonly Dependent[]): string => dependents.map((d) => `${d.id} (needs ${d.range})`).join(', ');
