/**
 * Notification templates as operators manage them (GET/POST/PUT/DELETE /notifications/templates):
 * every template is checked for syntax when saved, names are unique, shipped defaults can be
 * edited but not deleted.
 */
import type { NotificationTemplateRow } from '../../db/schema.ts';
import { InvalidStateError, NotFoundError, ValidationError } from '../../errors.ts';
import type { Clock } from '../../shared/clock.ts';
import type { Actor } from '../../shared/roles.ts';
import type { TemplateEngine } from '../../shared/templating.ts';
import type { AuditService } from '../audit/index.ts';
import type { NotificationsRepo } from './notifications.repo.ts';
import type { TemplateCreateBody, TemplateUpdateBody } from './notifications.schemas.ts';
import { checkTemplate } from './notifications.templates.ts';

/** The template operations of the notifications service. */
export function createTemplateAdmin(deps: { repo: NotificationsRepo; templates: TemplateEngine; audit: AuditService; clock: Clock }) {
  const { repo, templates, audit, clock } = deps;

  async function template(id: number): Promise<NotificationTemplateRow> {
    const row = await repo.template(id);
    if (!row) {
      throw new NotFoundError(`Template ${id} not found`);
    }
    return row;
  }

  async function checkName(name: string | undefined, id?: number): Promise<void> {
    if (name !== undefined && (await repo.templateNameTaken(name, id))) {
      throw new ValidationError(`name: a template named "${name}" exists`, 'name');
    }
  }

  return {
    templates: () => repo.templates(),
    template,
    async createTemplate(actor: Actor, input: TemplateCreateBody) {
      checkTemplate(templates, input.subject ?? '', 'subject');
      checkTemplate(templates, input.body, 'body');
      await checkName(input.name);
      const row = await repo.insertTemplate({ ...input, subject: input.subject ?? '' }, clock.now());
      await audit.record(actor, 'notification_template.create', { type: 'notification_template', id: row.id }, { channel: row.channel, event: row.event });
      return row;
    },
    async updateTemplate(actor: Actor, id: number, input: TemplateUpdateBody) {
      await template(id);
      if (input.subject !== undefined) {
        checkTemplate(templates, input.subject, 'subject');
      }
      if (input.body !== undefined) {
        checkTemplate(templates, input.body, 'body');
      }
      await checkName(input.name, id);
      const row = await repo.updateTemplate(id, input, clock.now());
      await audit.record(actor, 'notification_template.update', { type: 'notification_template', id }, { fields: Object.keys(input) });
      return row as NotificationTemplateRow;
    },
    async deleteTemplate(actor: Actor, id: number) {
      const row = await template(id);
      if (row.builtin) {
        throw new InvalidStateError(`Template ${id} is a shipped default; edit it instead of deleting it`);
      }
      await repo.deleteTemplate(id);
      await audit.record(actor, 'notification_template.delete', { type: 'notification_template', id });
    },
  };
}
