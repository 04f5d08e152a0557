/**
 * Server-Sent Events for one run: replays what the client has not seen (Last-Event-ID), then
 * follows new events as they are written, and ends after `run_finished`.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';

import type { RunEventRow } from '../../db/schema.ts';
import type { RunEvents } from './runs.events.ts';

const HEARTBEAT_MS = 15_000;

function frame(event: RunEventRow): string {
  const data = { ...event.data, target_id: event.target_id === 0 ? null : event.target_id, step_index: event.step_index, at: event.at.toISOString() };
  return `id: ${event.id}\nevent: ${event.type}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** Streams the events of `runId` on `reply` until the run finishes or the client leaves. */
export async function streamRunEvents(request: FastifyRequest, reply: FastifyReply, events: RunEvents, runId: number): Promise<void> {
  const header = request.headers['last-event-id'];
  let last = Number.parseInt(typeof header === 'string' ? header : '0', 10) || 0;
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-request-id': request.id });
  res.write(': connected\n\n');
  let closed = false;
  let busy = false;
  let again = false;
  let unwatch: () => void = () => {};
  const heartbeat = setInterval(() => res.write(': ping\n\n'), HEARTBEAT_MS);
  const close = () => {
    if (!closed) {
      closed = true;
      clearInterval(heartbeat);
      unwatch();
      res.end();
    }
  };
  const drain = async (): Promise<void> => {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    try {
      do {
        again = false;
        for (const event of await events.after(runId, last)) {
          res.write(frame(event));
          last = event.id;
          if (event.type === 'run_finished') {
            close();
            return;
          }
        }
      } while (again && !closed);
    } catch (err) {
      request.log.warn({ err }, 'event stream failed');
      close();
    } finally {
      busy = false;
    }
  };
  request.raw.on('close', close);
  unwatch = await events.watch(runId, () => void drain());
  await drain();
}
