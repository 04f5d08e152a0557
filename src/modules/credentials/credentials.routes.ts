/** Routes of the credentials service (guide: Credentials Service, port 3004). */
import type { CredentialRow } from '../../db/schema.ts';
import { actorOf } from '../../http/auth.plugin.ts';
import { IdParams, iso, MessageResponse, paging } from '../../http/schemas.ts';
import type { App } from '../../http/types.ts';
import type { CredentialType } from './credentials.material.ts';
import {
  CredentialCreateBody,
  CredentialListQuery,
  CredentialListResponse,
  CredentialResponse,
  CredentialUpdateBody,
  DeleteQuery,
} from './credentials.schemas.ts';
import type { CredentialsService } from './credentials.service.ts';

/** Maps a row to the API shape: metadata and `has_*` flags, never a secret. */
export function toCredentialResponse(row: CredentialRow) {
  const has = (field: string) => row.secret_fields.includes(field);
  return {
    id: row.id,
    name: row.name,
    type: row.type as CredentialType,
    username: row.username,
    domain: row.domain,
    auth: row.auth,
    description: row.description,
    has_password: has('password'),
    has_private_key: has('private_key'),
    has_passphrase: has('passphrase'),
    has_token: has('token'),
    has_certificate: has('certificate'),
    public_key_fingerprint: row.public_key_fingerprint,
    certificate: (row.certificate_info as { subject: string; issuer: string; valid_from: string; valid_to: string; fingerprint: string } | null) ?? null,
    created_by: row.created_by,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  };
}

/** Registers /credentials* on `app`. */
export function credentialsRoutes(app: App, { credentials }: { credentials: CredentialsService }): void {
  const tags = ['credentials'];
  const one = { 200: CredentialResponse };

  app.get('/credentials', {
    config: { access: 'viewer' },
    schema: { tags, summary: 'List credentials (metadata only)', querystring: CredentialListQuery, response: { 200: CredentialListResponse } },
    handler: async (request) => {
      const page = paging(request.query);
      const { rows, total } = await credentials.list(actorOf(request), { ...page, type: request.query.type, search: request.query.search });
      return { credentials: rows.map(toCredentialResponse), total, ...page };
    },
  });

  app.post('/credentials', {
    config: { access: 'admin' },
    schema: { tags, summary: 'Store a credential (secrets are encrypted and write-only)', body: CredentialCreateBody, response: one },
    handler: async (request) => toCredentialResponse(await credentials.create(actorOf(request), request.body)),
  });

  app.get('/credentials/:id', {
    config: { access: 'viewer' },
    schema: { tags, summary: 'Get a credential (metadata only)', params: IdParams, response: one },
    handler: async (request) => toCredentialResponse(await credentials.get(actorOf(request), request.params.id)),
  });

  app.put('/credentials/:id', {
    config: { access: 'admin' },
    schema: { tags, summary: 'Update a credential; omitted secrets are kept', params: IdParams, body: CredentialUpdateBody, response: one },
    handler: async (request) => toCredentialResponse(await credentials.update(actorOf(request), request.params.id, request.body)),
  });

  app.delete('/credentials/:id', {
    config: { access: 'admin' },
    schema: { tags, summary: 'Delete a credential (409 while targets use it, unless force=true)', params: IdParams, querystring: DeleteQuery, response: { 200: MessageResponse } },
    handler: async (request) => {
      await credentials.remove(actorOf(request), request.params.id, request.query.force === true);
      return { message: 'Credential deleted successfully' };
    },
  });
}
