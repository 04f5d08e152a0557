import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { ConfigError, loadConfig, redactConfig } from './config.ts';

describe('loadConfig', () => {
  test('defaults keep the guide ports and the embedded database', () => {
    const config = loadConfig({});
    assert.equal(config.http.port, 3000);
    assert.equal(config.http.servicePorts, true);
    assert.equal(config.db.url, undefined);
    assert.equal(config.dataDir, './data');
    assert.equal(config.http.bodyLimit, 1024 * 1024);
    assert.equal(config.auth.accessTtlS, 900);
  });

  test('environment overrides defaults and CLI flags override the environment', () => {
    const env = { OPSCONDUCTOR_PORT: '4100', OPSCONDUCTOR_SERVICE_PORTS: 'false', OPSCONDUCTOR_CORS_ORIGINS: 'https://a.example, https://b.example' };
    const fromEnv = loadConfig(env);
    assert.equal(fromEnv.http.port, 4100);
    assert.equal(fromEnv.http.servicePorts, false);
    assert.deepEqual(fromEnv.http.corsOrigins, ['https://a.example', 'https://b.example']);
    assert.equal(loadConfig(env, { port: 5000 }).http.port, 5000);
  });

  test('every problem is reported at once, naming the variable', () => {
    const error = captureConfigError(() =>
      loadConfig({
        OPSCONDUCTOR_PORT: 'abc',
        OPSCONDUCTOR_TRUST_PROXY: 'maybe',
        OPSCONDUCTOR_ADMIN_PASSWORD: 'short',
        OPSCONDUCTOR_DATABASE_URL: 'mysql://x',
        OPSCONDUCTOR_LOG_LEVEL: 'loud',
        OPSCONDUCTOR_JWT_SECRET: 'tiny',
      }),
    );
    const names = ['OPSCONDUCTOR_PORT', 'OPSCONDUCTOR_TRUST_PROXY', 'OPSCONDUCTOR_ADMIN_PASSWORD', 'OPSCONDUCTOR_DATABASE_URL', 'OPSCONDUCTOR_LOG_LEVEL', 'OPSCONDUCTOR_JWT_SECRET'];
    for (const name of names) {
      assert.equal(error.issues.filter((i) => i.startsWith(`${name}:`)).length, 1, `${name} once in ${error.message}`);
    }
    assert.equal(error.issues.length, names.length);
  });

  test('the result is frozen', () => {
    const config = loadConfig({});
    assert.throws(() => {
      (config.http as { port: number }).port = 1;
    }, TypeError);
  });

  test('redactConfig masks secrets and the database password', () => {
    const config = loadConfig({
      OPSCONDUCTOR_JWT_SECRET: 's'.repeat(40),
      OPSCONDUCTOR_ADMIN_PASSWORD: 'admin-password-123',
      OPSCONDUCTOR_DATABASE_URL: 'postgres://ops:hunter2-secret@db.internal:5432/ops',
    });
    const text = JSON.stringify(redactConfig(config));
    assert.doesNotMatch(text, /s{40}|admin-password-123|hunter2-secret/);
    assert.match(text, /db\.internal/);
    assert.equal(config.auth.jwtSecret, 's'.repeat(40), 'the original is untouched');
  });
});

function captureConfigError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    return e;
  }
  assert.fail('expected a ConfigError');
}
