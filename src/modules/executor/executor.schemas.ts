/** Schemas of the executor service's ad hoc endpoints (guide: Executor Service, port 3007). */
import { Type, type Static } from 'typebox';

import { TLS_MODES } from '../../executor/tls.ts';
import { StringEnum } from '../../http/schemas.ts';
import { StepInput } from '../jobs/index.ts';

const Id = Type.Integer({ minimum: 1, maximum: 2147483647 });
const NullableInt = Type.Union([Type.Integer(), Type.Null()]);

export const ExecuteBody = Type.Object(
  { job_run_id: Type.Optional(Id), target_id: Id, steps: Type.Array(StepInput, { minItems: 1, maxItems: 100 }) },
  { additionalProperties: false },
);
export type ExecuteBody = Static<typeof ExecuteBody>;
export const ExecuteResponse = Type.Object({ execution_id: Type.String(), status: Type.String(), job_run_id: Type.Optional(Type.Integer()) });

export const ExecutionParams = Type.Object({ id: Type.String({ pattern: '^(exec_)?[0-9]{1,10}$', description: 'exec_<id>' }) });
export const ExecutionResponse = Type.Object({
  id: Type.String(),
  status: Type.String(),
  output: Type.String({ description: 'stdout of every step, in order' }),
  exit_code: NullableInt,
  steps: Type.Array(Type.Record(Type.String(), Type.Unknown())),
});

export const ExecuteSshBody = Type.Object(
  {
    target_id: Id,
    command: Type.String({ minLength: 1, maxLength: 65536 }),
    credential_id: Type.Optional(Id),
    timeout_s: Type.Optional(Type.Integer({ minimum: 1, maximum: 3600 })),
  },
  { additionalProperties: false },
);
export type ExecuteSshBody = Static<typeof ExecuteSshBody>;
export const ExecuteWinrmBody = Type.Object(
  {
    target_id: Id,
    command: Type.String({ minLength: 1, maxLength: 65536 }),
    credential_id: Type.Optional(Id),
    shell: Type.Optional(StringEnum(['powershell', 'cmd'] as const, { description: 'Default powershell' })),
    timeout_s: Type.Optional(Type.Integer({ minimum: 1, maximum: 3600 })),
  },
  { additionalProperties: false },
);
export type ExecuteWinrmBody = Static<typeof ExecuteWinrmBody>;
export const ExecuteSshResponse = Type.Object({
  success: Type.Boolean(),
  output: Type.String(),
  stderr: Type.String(),
  exit_code: NullableInt,
  execution_time_ms: Type.Integer(),
  error: Type.Optional(Type.String()),
});
export const ExecuteWinrmResponse = Type.Object({
  ...ExecuteSshResponse.properties,
  tls: Type.Optional(StringEnum(TLS_MODES, { description: 'Over HTTPS (use_tls): how the server certificate was checked' })),
});

export const ExecuteSftpBody = Type.Object(
  {
    target_id: Id,
    operation: StringEnum(['upload', 'download'] as const),
    local_path: Type.String({ minLength: 1, maxLength: 1024, description: 'Relative path inside the file store' }),
    remote_path: Type.String({ minLength: 1, maxLength: 4096 }),
    credential_id: Type.Optional(Id),
  },
  { additionalProperties: false },
);
export type ExecuteSftpBody = Static<typeof ExecuteSftpBody>;
export const ExecuteSftpResponse = Type.Object({ success: Type.Boolean(), bytes_transferred: Type.Integer(), transfer_time_ms: Type.Integer(), error: Type.Optional(Type.String()) });

export const ExecuteWebhookBody = Type.Object(
  {
    url: Type.String({ pattern: '^https?://', maxLength: 8192 }),
    method: Type.Optional(StringEnum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const)),
    payload: Type.Optional(Type.Unknown()),
    headers: Type.Optional(Type.Record(Type.String(), Type.String({ maxLength: 8192 }))),
    timeout_s: Type.Optional(Type.Integer({ minimum: 1, maximum: 300 })),
  },
  { additionalProperties: false },
);
export type ExecuteWebhookBody = Static<typeof ExecuteWebhookBody>;
export const ExecuteWebhookResponse = Type.Object({ status_code: NullableInt, response: Type.Unknown(), response_time_ms: Type.Integer(), error: Type.Optional(Type.String()) });
