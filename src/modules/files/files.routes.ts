/** /files: the file store behind sftp steps (executor service, port 3007). Operators only. */
import type { Readable } from 'node:stream';

import { Type } from 'typebox';

import { actorOf } from '../../http/auth.plugin.ts';
import { MessageResponse } from '../../http/schemas.ts';
import type { App } from '../../http/types.ts';
import type { FilesService } from './files.service.ts';

const FileResponse = Type.Object({ path: Type.String(), size: Type.Integer(), modified_at: Type.String() });
const PathParams = Type.Object({ '*': Type.String({ minLength: 1, maxLength: 1024, description: 'Relative path inside the store' }) });

/** Registers /files* on `app` (in its own scope: PUT takes any content type as raw bytes). */
export function filesRoutes(app: App, { files }: { files: FilesService }): void {
  const tags = ['files'];
  app.get('/files', {
    config: { access: 'operator' },
    schema: { tags, summary: 'List the file store', response: { 200: Type.Object({ files: Type.Array(FileResponse), total: Type.Integer() }) } },
    handler: async () => {
      const list = await files.list();
      return { files: list, total: list.length };
    },
  });

  app.get('/files/*', {
    config: { access: 'operator' },
    schema: { tags, summary: 'Download a file', params: PathParams },
    handler: async (request, reply) => {
      const { stream, size } = await files.open(request.params['*']);
      return reply.header('content-type', 'application/octet-stream').header('content-length', size).send(stream);
    },
  });

  app.delete('/files/*', {
    config: { access: 'operator' },
    schema: { tags, summary: 'Delete a file', params: PathParams, response: { 200: MessageResponse } },
    handler: async (request) => {
      await files.remove(actorOf(request), request.params['*']);
      return { message: 'File deleted successfully' };
    },
  });

  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
    scope.put('/files/*', {
      config: { access: 'operator' },
      schema: { tags, summary: 'Upload a file (raw body; replaces an existing one)', params: PathParams, response: { 200: FileResponse } },
      handler: async (request) => files.put(actorOf(request), (request.params as { '*': string })['*'], request.body as Readable),
    });
  });
}
