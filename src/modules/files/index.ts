/** Public surface of the files module. */
export { filesRoutes } from './files.routes.ts';
export { createFilesService, type FilesService, type StoredFile } from './files.service.ts';
