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

/** The response as an open event stream: headers sent, a heartbeat comment every 15 s, closed once. */
function openStream(request: FastifyRequest, reply: FastifyReply) {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-request-id': request.id });
  res.write(': connected\n\n');
  const heartbeat = setInterval(() => res.write(': ping\n\n'), HEARTBEAT_MS);
  const stream = {
    closed: false,
    onClose: () => {},
    write: (text: string) => res.write(text),
    close(): void {
      if (!stream.closed) {
        stream.closed = true;
        clearInterval(heartbeat);
        stream.onClose();
        res.end();
      }
    },
  };
  return stream;
}

/** Streams the events of `runId` on `reply` until the run finishes or the client leaves. */
export async function streamRunEvents(request: FastifyRequest, reply: FastifyReply, events: RunEvents, runId: number): Promise<void> {
  const header = request.headers['last-event-id'];
  let last = Number.parseInt(typeof header === 'string' ? header : '0', 10) || 0;
  const stream = openStream(request, reply);
  let busy = false;
  let again = false;
  /** Sends what was written after `last`; one pass at a time, again if woken meanwhile. */
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
          stream.write(frame(event));
          last = event.id;
          if (event.type === 'run_finished') {
            stream.close();
            return;
          }
        }
      } while (again && !stream.closed);
    } catch (err) {
      request.log.warn({ err }, 'event stream failed');
      stream.close();
    } finally {
      busy = false;
    }
  };
  request.raw.on('close', () => stream.close());
  const unwatch = await events.watch(runId, () => void drain());
  if (stream.closed) {
    unwatch(); // the client left while the watch was being set up
    return;
  }
  stream.onClose = unwatch;
  await drain();
}
