/** Public surface of the users module. */
export { createUsersRepo } from './users.repo.ts';
export { toUserResponse, usersRoutes } from './users.routes.ts';
export { createUsersService, type UsersService } from './users.service.ts';
