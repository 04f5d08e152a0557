/**
 * What the loop tests share: a test app whose clock the test moves, a loopback HTTP receiver whose
 * `/hold` path keeps runs running until released, and helpers to make jobs and schedules and read
 * their fires back.
 */
import type { ServerResponse } from 'node:http';
import { after, before } from 'node:test';

import { createTestContext, type TestContext, unique } from '../../../test/app.ts';
import { listenHttp } from '../../../test/http-sink.ts';
import type { Actor } from '../../shared/roles.ts';

/** One fire as the tests compare it: "HH:MM" (or "HH:MM:SS"), outcome, run. */
export interface SeenFire {
  at: string;
  outcome: string;
  run: number | null;
  error: string | null;
}

/** Registers before/after hooks in the calling suite and returns its helpers. */
export function useLoopFixture() {
  const held: ServerResponse[] = [];
  const state = { now: new Date('2026-05-01T10:01:00Z'), holding: false, base: '', close: async () => {} };
  const f = {
    ctx: undefined as unknown as TestContext,
    actor: { id: 1, username: 'admin', role: 'admin', tokenId: 't', tokenExpiresAt: new Date(Date.now() + 3_600_000) } as Actor,
    /** Moves the clock. */
    at: (iso: string) => (state.now = new Date(iso)),
    /** Holds runs of /hold jobs until `release`. */
    hold: () => (state.holding = true),
    release() {
      state.holding = false;
      held.splice(0).forEach((r) => r.end('ok'));
    },
    job: async (path: string, extra: Record<string, unknown> = {}) =>
      (await f.ctx.deps.jobs.create(f.actor, { name: unique('sched'), steps: [{ type: 'webhook', name: 'call', url: `${state.base}${path}` }], ...extra } as never)).id,
    schedule: async (jobId: number, cron: string, extra: Record<string, unknown> = {}) => (await f.ctx.deps.scheduler.create(f.actor, { job_id: jobId, cron, ...extra } as never)).id,
    tick: async () => (await f.ctx.deps.schedulerLoop.tick()).fired,
    /** A 5-minute schedule of a /hold job (holding), fired at 10:05, its run held running. */
    async heldFirstRun(extra: Record<string, unknown> = {}): Promise<{ id: number; first: number }> {
      f.at('2026-05-01T10:01:00Z');
      f.hold();
      const id = await f.schedule(await f.job('/hold'), '*/5 * * * *', extra);
      f.at('2026-05-01T10:05:00Z');
      await f.tick();
      const first = (await f.fires(id))[0]?.run as number;
      await f.running(first);
      return { id, first };
    },
    /** Fires oldest first. */
    async fires(id: number, seconds = false): Promise<SeenFire[]> {
      const rows = (await f.ctx.deps.scheduler.fires(id, { page: 1, limit: 2000 })).rows;
      return rows.map((r) => ({ at: r.scheduled_for.toISOString().slice(11, seconds ? 19 : 16), outcome: r.outcome, run: r.run_id, error: r.error })).reverse();
    },
    /** "HH:MM outcome" per fire, oldest first. */
    outcomes: async (id: number) => (await f.fires(id)).map((x) => `${x.at} ${x.outcome}`),
    /** Waits until run `runId` has finished; its status. */
    async settled(runId: number): Promise<string> {
      const deadline = Date.now() + 20_000;
      for (;;) {
        const run = await f.ctx.deps.runs.getRun(runId);
        if (!['queued', 'running'].includes(run.status) || Date.now() > deadline) {
          return run.status;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    /** Waits until run `runId` is running (or a request is held). */
    async running(runId: number): Promise<void> {
      const deadline = Date.now() + 20_000;
      while ((await f.ctx.deps.runs.getRun(runId)).status !== 'running' && held.length === 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };

  before(async () => {
    const server = await listenHttp((req, _body, res) => {
      if (req.url === '/hold' && state.holding) {
        held.push(res);
        return;
      }
      res.end('ok');
    });
    state.base = server.url;
    state.close = server.close;
    f.ctx = await createTestContext({ worker: true, clock: { now: () => state.now } });
  });
  after(async () => {
    f.release();
    await f.ctx?.close();
    await state.close();
  });
  return f;
}
