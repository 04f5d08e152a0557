/** Request and response schemas of the step libraries service (guide: Step Libraries Service, port 3011). */
import { Type, type Static } from 'typebox';

import { NullableTimestamp, Timestamp } from '../../http/schemas.ts';

export const LibraryParams = Type.Object({ id: Type.String({ pattern: '^[a-z0-9][a-z0-9-]{1,63}$', description: 'Library id' }) });
export type LibraryParams = Static<typeof LibraryParams>;
export const StepParams = Type.Object({ id: LibraryParams.properties.id, step_name: Type.String({ pattern: '^[a-z][a-z0-9_]{0,63}$' }) });
export type StepParams = Static<typeof StepParams>;

export const CatalogResponse = Type.Object({
  available_libraries: Type.Array(
    Type.Object({ id: Type.String(), name: Type.String(), version: Type.String(), description: Type.String(), installed: Type.Boolean(), installed_version: Type.Union([Type.String(), Type.Null()]) }),
  ),
});
export const DownloadResponse = Type.Object({ download_url: Type.String(), expires_at: Timestamp() });
export const BundleQuery = Type.Object({ expires: Type.Integer({ minimum: 0 }), signature: Type.String({ minLength: 1, maxLength: 200 }) }, { additionalProperties: false });
export type BundleQuery = Static<typeof BundleQuery>;

export const InstallBody = Type.Object({ version: Type.Optional(Type.String({ maxLength: 100 })) }, { additionalProperties: false });
export const InstallQuery = Type.Object(
  {
    allow_downgrade: Type.Optional(Type.Boolean({ description: 'Install an older version than the installed one' })),
    force: Type.Optional(Type.Boolean({ description: 'Install even when installed libraries depend on a range this version is outside of' })),
  },
  { additionalProperties: false },
);
export const UninstallQuery = Type.Object({ force: Type.Optional(Type.Boolean({ description: 'Uninstall even when jobs or installed libraries use it' })) }, { additionalProperties: false });
export const InstallResponse = Type.Object({ message: Type.String(), version: Type.String(), sha256: Type.String() });

const StepSummary = Type.Object({
  name: Type.String(),
  display_name: Type.Union([Type.String(), Type.Null()]),
  description: Type.Union([Type.String(), Type.Null()]),
  category: Type.Union([Type.String(), Type.Null()]),
  platforms: Type.Array(Type.String()),
  parameters: Type.Record(Type.String(), Type.Record(Type.String(), Type.Unknown())),
});
export const LibraryListResponse = Type.Object({
  libraries: Type.Array(Type.Object({ id: Type.String(), name: Type.String(), version: Type.String(), steps: Type.Integer(), installed_at: Timestamp(), sha256: Type.String(), source: Type.String() })),
});
export const LibraryResponse = Type.Object({
  id: Type.String(),
  name: Type.String(),
  version: Type.String(),
  sha256: Type.String(),
  installed_at: NullableTimestamp(),
  steps: Type.Array(StepSummary),
  manifest: Type.Record(Type.String(), Type.Unknown()),
});
export const StepsResponse = Type.Object({ steps: Type.Array(StepSummary) });

export const ExecuteBody = Type.Object(
  {
    parameters: Type.Object(
      { target_id: Type.Integer({ minimum: 1, maximum: 2147483647 }), credential_id: Type.Optional(Type.Integer({ minimum: 1, maximum: 2147483647 })) },
      { additionalProperties: true, description: 'target_id, credential_id? and the step’s own parameters' },
    ),
    timeout_s: Type.Optional(Type.Integer({ minimum: 1, maximum: 3600, description: 'Bound on the whole call, over all of the step’s implementation items (default 300)' })),
  },
  { additionalProperties: false },
);
export type ExecuteBody = Static<typeof ExecuteBody>;
export const ExecuteResponse = Type.Object({
  result: Type.Object({
    status: Type.String(),
    exit_code: Type.Union([Type.Integer(), Type.Null()]),
    stdout: Type.String(),
    stderr: Type.String(),
    outputs: Type.Record(Type.String(), Type.String()),
    error: Type.Optional(Type.String()),
  }),
  execution_time_ms: Type.Integer(),
});
