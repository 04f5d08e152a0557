/**
 * The shipped step catalog (catalog/<id>/manifest.json + scripts) as the catalog tests read it:
 * manifests, one step by name, and parameter values resolved the way a job resolves them
 * (defaults merged, required and types checked) before a step is rendered or run.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import type { LibraryManifest, LibraryParameter, LibraryStep, StepImplementation } from '../../src/libraries/manifest.ts';

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

/** Whether `value` has the parameter's declared type. */
export function fitsType(value: unknown, type: LibraryParameter['type']): boolean {
  switch (type) {
    case 'integer':
      return Number.isSafeInteger(value);
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    case 'string':
    case 'boolean':
      return typeof value === type;
  }
}

/** `values` with defaults merged; throws on unknown names, missing required values, wrong types and values outside the enum. */
export function resolveParams(step: LibraryStep, values: Record<string, unknown>): ParamValues {
  for (const name of Object.keys(values)) {
    if (!Object.hasOwn(step.parameters, name)) {
      throw new Error(`${step.name} has no parameter ${name}`);
    }
  }
  const resolved: ParamValues = {};
  for (const [name, decl] of Object.entries(step.parameters)) {
    const value = values[name] ?? decl.default;
    if (value === undefined) {
      if (decl.required) {
        throw new Error(`${step.name}: ${name} is required`);
      }
      continue;
    }
    if (!fitsType(value, decl.type) || (decl.enum && !decl.enum.includes(value as string))) {
      throw new Error(`${step.name}: ${name} = ${JSON.stringify(value)} does not fit ${decl.type}${decl.enum ? ` ${decl.enum.join('|')}` : ''}`);
    }
    resolved[name] = value as string | number | boolean;
  }
  return resolved;
}
