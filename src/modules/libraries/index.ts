/** Public surface of the libraries module. */
export { createLibrariesRepo, type LibrariesRepo } from './libraries.repo.ts';
export { librariesRoutes } from './libraries.routes.ts';
export { CATALOG_DIR, createLibrariesService, type LibrariesService } from './libraries.service.ts';
export { checkRunPlatforms } from './libraries.platforms.ts';
