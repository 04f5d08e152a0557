/** SMTP settings: stored plain in `settings` with the password sealed as a secret setting, and a real test send. */
import { MailError, sendMail, type SmtpOptions } from '../../executor/mail.ts';
import type { SecretSettings } from '../../secrets/secret-settings.ts';
import type { Clock } from '../../shared/clock.ts';
import type { Actor } from '../../shared/roles.ts';
import type { AuditService } from '../audit/index.ts';
import type { NotificationsRepo } from './notifications.repo.ts';
import type { SmtpSettingsBody, SmtpTestBody } from './notifications.schemas.ts';

const SMTP_PASSWORD = 'smtp_password';

/** Builds the SMTP settings store. */
export function createSmtpSettings(deps: { repo: NotificationsRepo; secretSettings: SecretSettings; audit: AuditService; clock: Clock }) {
  const { repo, secretSettings, audit, clock } = deps;

  /** The SMTP transport options, or undefined when SMTP is not configured. */
  async function options(): Promise<SmtpOptions | undefined> {
    const s = await repo.smtpSettings();
    if (!s?.smtp_server) {
      return undefined;
    }
    const password = await secretSettings.get<string>(SMTP_PASSWORD);
    return {
      host: String(s.smtp_server),
      port: Number(s.smtp_port),
      useTls: s.use_tls !== false,
      username: (s.username as string | null) ?? undefined,
      password: password ?? undefined,
      fromEmail: String(s.from_email ?? s.username ?? `opsconductor@${String(s.smtp_server)}`),
      fromName: (s.from_name as string | null) ?? 'OpsConductor',
      tlsVerify: s.tls_verify !== false,
    };
  }

  return {
    options,

    /** The settings as the API shows them (never the password). */
    async get() {
      const s = (await repo.smtpSettings()) ?? {};
      return {
        smtp_server: (s.smtp_server as string | undefined) ?? null,
        smtp_port: (s.smtp_port as number | undefined) ?? null,
        use_tls: s.use_tls !== false,
        username: (s.username as string | null | undefined) ?? null,
        from_email: (s.from_email as string | null | undefined) ?? null,
        from_name: (s.from_name as string | null | undefined) ?? null,
        tls_verify: s.tls_verify !== false,
        has_password: (await secretSettings.get<string>(SMTP_PASSWORD)) !== undefined,
      };
    },

    async save(actor: Actor, input: SmtpSettingsBody): Promise<void> {
      const { password, ...plain } = input;
      await repo.saveSmtpSettings({ use_tls: true, tls_verify: true, ...plain }, clock.now());
      if (password !== undefined) {
        await (password === null ? secretSettings.remove(SMTP_PASSWORD) : secretSettings.set(SMTP_PASSWORD, password));
      }
      await audit.record(actor, 'notification.smtp_settings', { type: 'settings', id: 'smtp' }, { smtp_server: input.smtp_server, smtp_port: input.smtp_port, password_changed: password !== undefined });
    },

    /** Sends a test email now; the server's own error text on failure (a 200 either way: the request itself was fine). */
    async test(actor: Actor, input: SmtpTestBody): Promise<{ success: boolean; message: string }> {
      const smtp = await options();
      if (!smtp) {
        return { success: false, message: 'SMTP is not configured: POST /api/notification/smtp/settings first' };
      }
      try {
        const body = input.body ?? 'This is a test message from OpsConductor.';
        await sendMail(smtp, { to: input.to_email, subject: input.subject ?? 'OpsConductor test email', text: body });
        await audit.record(actor, 'notification.smtp_test', { type: 'settings', id: 'smtp' }, { success: true });
        return { success: true, message: 'Test email sent successfully' };
      } catch (e) {
        if (!(e instanceof MailError)) {
          throw e;
        }
        await audit.record(actor, 'notification.smtp_test', { type: 'settings', id: 'smtp' }, { success: false });
        return { success: false, message: e.message };
      }
    },
  };
}
