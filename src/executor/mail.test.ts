/**
 * The SMTP client against a real SMTP server (smtp-server, test/smtp.ts) on loopback: STARTTLS,
 * implicit TLS and plain delivery as a mail client would read it, and each failure classified with
 * the server's own words — and never the password.
 */
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';

import { startSmtpServer, type TestSmtpServer } from '../../test/smtp.ts';
import { MailError, type MailErrorKind, type MailMessage, sendMail, type SmtpOptions } from './mail.ts';

const USER = 'mailer';
const PASSWORD = 'Sëcret-mail-pässword';
const message: MailMessage = { to: 'ops@example.com', subject: 'Job finished', text: 'All good.' };

function optionsFor(server: TestSmtpServer, overrides: Partial<SmtpOptions> = {}): SmtpOptions {
  return { host: '127.0.0.1', port: server.port, useTls: false, fromEmail: 'opsconductor@example.com', timeoutMs: 5_000, ...overrides };
}

/** Sends and expects a {@link MailError} of `kind`; returns it. */
async function sendFails(smtp: SmtpOptions, kind: MailErrorKind): Promise<MailError> {
  const err = await sendMail(smtp, message).then(
    () => assert.fail('the message was accepted'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof MailError, String(err));
  assert.equal(err.kind, kind, err.message);
  return err;
}

/** A loopback port that nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Just enough SMTP to take AUTH PLAIN and answer 535 with the token and the password it decodes to. */
async function startEchoingAuthServer(): Promise<{ port: number; close(): Promise<void> }> {
  const server = createServer((socket) => {
    socket.on('error', () => {}); // the client may hang up with a reset
    socket.write('220 echo ESMTP\r\n');
    socket.on('data', (chunk: Buffer) => {
      const line = chunk.toString('utf8').trim();
      const token = /^AUTH PLAIN (\S+)/i.exec(line)?.[1];
      if (token) {
        const password = Buffer.from(token, 'base64').toString('utf8').split('\0')[2];
        socket.write(`535 5.7.8 Bad credentials ${token} (password ${password})\r\n`);
      } else if (/^EHLO/i.test(line)) {
        socket.write('250-echo\r\n250 AUTH PLAIN\r\n');
      } else {
        socket.end('221 bye\r\n');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { port, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

describe('sendMail over STARTTLS with AUTH', () => {
  let server: TestSmtpServer;
  let trusted: SmtpOptions;
  before(async () => {
    server = await startSmtpServer({ users: { [USER]: PASSWORD }, tls: 'starttls' });
    trusted = optionsFor(server, { useTls: true, username: USER, password: PASSWORD, ca: server.cert?.cert });
  });
  after(() => server?.close());

  test('delivers text and HTML with the sender name, recipients and a non-ASCII subject', async () => {
    const sent = await sendMail(
      { ...trusted, fromName: 'OpsConductor Alerts' },
      { to: ['ops@example.com', 'oncall@example.com'], subject: 'Job “nightly backup” échoué ✔', text: 'Run 42 failed.', html: '<p>Run <b>42</b> failed.</p>' },
    );
    assert.match(sent.response, /^250 /);
    const mail = server.messages.find((m) => m.headers.get('message-id') === sent.messageId);
    assert.ok(mail, `message ${sent.messageId} arrived`);
    assert.deepEqual(mail.from, { name: 'OpsConductor Alerts', address: 'opsconductor@example.com' });
    assert.deepEqual(mail.to, ['ops@example.com', 'oncall@example.com']);
    assert.deepEqual(mail.envelope, { from: 'opsconductor@example.com', to: ['ops@example.com', 'oncall@example.com'] });
    assert.equal(mail.subject, 'Job “nightly backup” échoué ✔');
    assert.equal(mail.text.trim(), 'Run 42 failed.');
    assert.equal(mail.html?.trim(), '<p>Run <b>42</b> failed.</p>');
    assert.equal(mail.user, USER);
    assert.equal(mail.secure, true, 'the session was upgraded before AUTH and DATA');
  });

  test('a wrong password is auth_failed with the server 535 reply, and never shows the password', async () => {
    const wrong = `${PASSWORD}-wrong`;
    const err = await sendFails({ ...trusted, password: wrong }, 'auth_failed');
    assert.match(err.message, /535 5\.7\.8 Authentication credentials invalid/);
    assert.equal(err.serverResponse, '535 5.7.8 Authentication credentials invalid');
    assert.equal(err.responseCode, 535);
    for (const secret of [wrong, PASSWORD, Buffer.from(`\0${USER}\0${wrong}`).toString('base64')]) {
      assert.ok(!err.message.includes(secret) && !String(err.serverResponse).includes(secret), 'no password in the error');
    }
  });

  test('an untrusted self-signed certificate is a tls error, and no credentials were sent', async () => {
    const attempts = server.authAttempts;
    const err = await sendFails({ ...trusted, ca: undefined }, 'tls');
    assert.match(err.message, /self-signed certificate/);
    assert.equal(server.authAttempts, attempts, 'AUTH never reached the server');
  });

  test('TLS off against a server that wants STARTTLS before AUTH is a tls error in its words', async () => {
    const attempts = server.authAttempts;
    const err = await sendFails({ ...trusted, useTls: false }, 'tls');
    assert.match(err.message, /Must issue a STARTTLS command first/);
    assert.equal(server.authAttempts, attempts, 'the server took no credentials in the clear');
  });

  test('tlsVerify false accepts the untrusted certificate', async () => {
    const sent = await sendMail({ ...trusted, ca: undefined, tlsVerify: false }, message);
    assert.ok(server.messages.some((m) => m.headers.get('message-id') === sent.messageId && m.secure));
  });
});

describe('sendMail over implicit TLS', () => {
  let server: TestSmtpServer;
  before(async () => {
    server = await startSmtpServer({ tls: 'implicit' });
  });
  after(() => server?.close());

  test('implicitTls on a random port delivers over TLS from the first byte', async () => {
    const sent = await sendMail(optionsFor(server, { useTls: true, implicitTls: true, ca: server.cert?.cert }), message);
    const mail = server.messages.find((m) => m.headers.get('message-id') === sent.messageId);
    assert.equal(mail?.secure, true);
  });

  test('implicitTls wins over useTls false: a TLS setting never falls back to plain', async () => {
    const sent = await sendMail(optionsFor(server, { useTls: false, implicitTls: true, ca: server.cert?.cert }), message);
    assert.equal(server.messages.find((m) => m.headers.get('message-id') === sent.messageId)?.secure, true);
  });

  test('an untrusted certificate is a tls error', async () => {
    const err = await sendFails(optionsFor(server, { useTls: true, implicitTls: true }), 'tls');
    assert.match(err.message, /self-signed certificate/);
  });

  test('STARTTLS against an implicit-TLS port times out waiting for the greeting', async () => {
    const err = await sendFails(optionsFor(server, { useTls: true, timeoutMs: 300 }), 'timeout');
    assert.match(err.message, /no answer within 300 ms/);
  });
});

describe('sendMail without TLS', () => {
  let plain: TestSmtpServer;
  let offersTls: TestSmtpServer;
  before(async () => {
    [plain, offersTls] = await Promise.all([startSmtpServer({ users: { [USER]: PASSWORD } }), startSmtpServer({ tls: 'starttls' })]);
  });
  after(() => Promise.all([plain?.close(), offersTls?.close()]));

  test('useTls false delivers in the clear, with AUTH', async () => {
    const sent = await sendMail(optionsFor(plain, { username: USER, password: PASSWORD }), message);
    const mail = plain.messages.find((m) => m.headers.get('message-id') === sent.messageId);
    assert.equal(mail?.secure, false);
    assert.equal(mail?.user, USER);
  });

  test('useTls false does not try the STARTTLS a server offers (its certificate is not trusted)', async () => {
    const sent = await sendMail(optionsFor(offersTls), message);
    const mail = offersTls.messages.find((m) => m.headers.get('message-id') === sent.messageId);
    assert.equal(mail?.secure, false);
  });

  test('implicit TLS against a plain server is a tls handshake error', async () => {
    const err = await sendFails(optionsFor(plain, { useTls: true, implicitTls: true }), 'tls');
    assert.match(err.message, /handshake failed: wrong version number/);
  });

  test('useTls true against a server without STARTTLS is a tls error that says so', async () => {
    const attempts = plain.authAttempts;
    const err = await sendFails(optionsFor(plain, { useTls: true, username: USER, password: PASSWORD }), 'tls');
    assert.match(err.message, /does not offer STARTTLS.*500 5\.5\.2 Error: command not recognized/);
    assert.equal(plain.authAttempts, attempts, 'no credentials went over the clear connection');
  });
});

describe('sendMail failures', () => {
  test('a server that echoes the credentials in its reply: the error still shows no password', async () => {
    const echo = await startEchoingAuthServer();
    try {
      const err = await sendFails({ host: '127.0.0.1', port: echo.port, useTls: false, username: USER, password: PASSWORD, fromEmail: 'opsconductor@example.com' }, 'auth_failed');
      assert.match(err.message, /535 5\.7\.8 Bad credentials \*\*\* \(password \*\*\*\)/);
      for (const secret of [PASSWORD, Buffer.from(`\0${USER}\0${PASSWORD}`).toString('base64')]) {
        assert.ok(!err.message.includes(secret) && !String(err.serverResponse).includes(secret), err.message);
      }
    } finally {
      await echo.close();
    }
  });

  test('a refused connection is a connection error naming the address', async () => {
    const port = await closedPort();
    const err = await sendFails({ host: '127.0.0.1', port, useTls: false, fromEmail: 'opsconductor@example.com' }, 'connection');
    assert.match(err.message, new RegExp(`connect ECONNREFUSED 127\\.0\\.0\\.1:${port}`));
  });

  test('a server that never greets is a timeout', async () => {
    const sockets: Socket[] = [];
    const silent: Server = createServer((socket) => sockets.push(socket.on('error', () => {})));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const port = (silent.address() as { port: number }).port;
      await sendFails({ host: '127.0.0.1', port, useTls: false, fromEmail: 'opsconductor@example.com', timeoutMs: 300 }, 'timeout');
    } finally {
      sockets.forEach((socket) => socket.destroy());
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  test('a temporary 451 at the end of DATA is rejected with the server text, and the next try goes through', async () => {
    const server = await startSmtpServer({ failFirst: 1 });
    try {
      const err = await sendFails(optionsFor(server), 'rejected');
      assert.match(err.message, /451 4\.3\.0 Temporary local problem, try again later/);
      assert.equal(err.responseCode, 451);
      assert.equal(server.messages.length, 0);
      await sendMail(optionsFor(server), message);
      assert.equal(server.messages.length, 1);
      assert.equal(server.rejected, 1);
    } finally {
      await server.close();
    }
  });
});
