/**
 * The shipped step catalog (catalog/<id>/manifest.json + scripts) as the catalog tests read it:
 * manifests, one step by name, and parameter values resolved by the job-side check itself
 * (defaults merged, required, types and enums checked) before a step is rendered or run.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import type { LibraryManifest, LibraryStep, StepImplementation } from '../../src/libraries/manifest.ts';
import { checkValues } from '../../src/modules/libraries/libraries.steps.ts';

/** The catalog directory at the repository root. */
export const CATALOG_DIR = join(import.meta.dirname, '..', '..', 'catalog');

/** One library of the catalog: its directory and its manifest (as parsed, not yet checked). */
export interface CatalogLibrary {
  dir: string;
  manifest: LibraryManifest;
}

/** Parameter values after resolution. */
export type ParamValues = Record<string, string | number | boolean>;

/** Every library in the catalog, by directory name. */
export function loadCatalog(): CatalogLibrary[] {
  return readdirSync(CATALOG_DIR, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort()
    .map((name) => {
      const dir = join(CATALOG_DIR, name);
      return { dir, manifest: JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as LibraryManifest };
    });
}

/** The step `name` of library `id` with its library; throws when either is missing. */
export function getCatalogStep(id: string, name: string): { library: CatalogLibrary; step: LibraryStep } {
  const library = loadCatalog().find((l) => l.manifest.id === id);
  const step = library?.manifest.steps.find((s) => s.name === name);
  if (!library || !step) {
    throw new Error(`the catalog has no step ${id}/${name}`);
  }
  return { library, step };
}

/** The implementation items of a step, in order. */
export const implementationItems = (step: LibraryStep): StepImplementation[] => (Array.isArray(step.implementation) ? step.implementation : [step.implementation]);

/**
 * `values` with defaults merged, checked as a job's library step is when the job is saved
 * (checkValues: unknown names, missing required values, wrong types and values outside the enum
 * throw).
 */
export const resolveParams = (step: LibraryStep, values: Record<string, unknown>): ParamValues => checkValues(step, values, `${step.name}.parameters`) as ParamValues;
