import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';

import { SSH_TEST_PASSWORD, sshdSkip } from '../../../test/sshd.ts';
import { type Json, MAX_OUTPUT, sshRunsEnv, stepOf } from './runs.fixtures.ts';

const MARKER = '\n[output truncated]\n';

/** One Server-Sent Event, with the time it arrived. */
interface SseEvent {
  id: number;
  event: string;
  data: Json;
  at: number;
}

/** Reads a Server-Sent Events body frame by frame, calling `onEvent` as each one arrives. */
async function readSse(body: ReadableStream<Uint8Array>, onEvent: (event: SseEvent) => void | Promise<void> = () => {}): Promise<SseEvent[]> {
  const events: SseEvent[] = [];
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) {
      break;
    }
    buffer += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const fields: Record<string, string> = {};
      for (const line of frame.split('\n')) {
        const match = /^([a-z]+): ?(.*)$/.exec(line);
        if (match) {
          fields[match[1] as string] = match[2] as string;
        }
      }
      if (fields.event === undefined && fields.data === undefined) {
        continue; // a comment (": connected", ": ping")
      }
      assert.match(fields.id ?? '', /^\d+$/, `every event frame has an id: ${frame}`);
      const event = { id: Number(fields.id), event: fields.event ?? 'message', data: JSON.parse(fields.data ?? '{}') as Json, at: Date.now() };
      events.push(event);
      await onEvent(event);
    }
  }
  return events;
}

describe('job runs over SSH: templates, secret masking, output caps and the live event stream', { skip: sshdSkip() }, () => {
  const env = sshRunsEnv();
  const { api, getRun, createJob, startRun, waitForRun, createTarget, events, credentials } = env;

  test('templates render params, target, job, run and earlier steps; secrets are masked in output, events and logs', async () => {
    const { ctx, sshd } = env;
    const secret = `hunter-${randomBytes(8).toString('hex')}`;
    const target = await createTarget({ credential: credentials.password });
    const job = await createJob({
      parameters: { greeting: { type: 'string', default: 'hi' }, times: { type: 'number', required: true }, token: { type: 'string', secret: true, required: true } },
      steps: [
        { type: 'command', name: 'first', command: 'echo "OC_OUTPUT color=blue"; echo "OC_OUTPUT size={{ params.times }}"; exit 0' },
        {
          type: 'command',
          name: 'render',
          command:
            'echo "g={{ params.greeting }} n={{ params.times }} t={{ target.name }} h={{ target.host }}:{{ target.port }} j={{ job.name }}/{{ job.id }} r={{ run.id }}/{{ run.trigger }} c={{ steps.first.outputs.color }} s={{ steps[0].outputs.size }} e={{ steps.first.exit_code }}"',
        },
        { type: 'command', name: 'secrets', command: `echo "tok={{ params.token }}"; echo "pw=${SSH_TEST_PASSWORD}" >&2` },
        { type: 'command', name: 'skipped_by_when', command: 'echo should-not-run', when: '{% if steps.first.outputs.color == "red" %}yes{% endif %}' },
        { type: 'command', name: 'runs_by_when', command: 'echo ran', when: '{{ steps.render.exit_code | plus: 1 }}' },
      ],
    });
    const runId = await startRun(job.id, { target_ids: [target.id], parameters: { times: 7, token: secret } });
    const run = await waitForRun(runId);
    assert.equal(run.status, 'completed', JSON.stringify(run));
    assert.deepEqual(run.parameters, { greeting: 'hi', times: 7, token: '***' });
    assert.deepEqual(stepOf(run, target.id, 0).outputs, { color: 'blue', size: '7' });
    assert.equal(stepOf(run, target.id, 1).stdout, `g=hi n=7 t=${target.name} h=127.0.0.1:${sshd.port} j=${job.name}/${job.id} r=${runId}/manual c=blue s=7 e=0\n`);
    const secrets = stepOf(run, target.id, 2);
    assert.equal(secrets.stdout, 'tok=***\n', 'a secret parameter is masked in stored stdout');
    assert.equal(secrets.stderr, 'pw=***\n', 'the credential password is masked in stored stderr');
    assert.equal(stepOf(run, target.id, 3).status, 'skipped');
    assert.equal(stepOf(run, target.id, 3).stdout, '');
    assert.equal(stepOf(run, target.id, 4).status, 'succeeded');
    assert.equal(stepOf(run, target.id, 4).stdout, 'ran\n');

    const res = await events(runId);
    assert.equal(res.status, 200);
    const replay = await readSse(res.body as ReadableStream<Uint8Array>);
    const outputs = replay.filter((e) => e.event === 'output' && e.data.step_index === 2);
    assert.ok(outputs.some((e) => e.data.text === 'tok=***\n'), JSON.stringify(outputs));
    assert.ok(outputs.some((e) => e.data.text === 'pw=***\n'), JSON.stringify(outputs));
    const everything = JSON.stringify(replay);
    assert.ok(!everything.includes(secret) && !everything.includes(SSH_TEST_PASSWORD), 'no secret in any event');
    const tail = await api('GET', `/job-runs/${runId}/output?target_id=${target.id}&step_index=2&stream=stderr`);
    assert.equal(tail.json().data, 'pw=***\n');
    const logs = ctx.logs.text();
    assert.ok(!logs.includes(secret), 'the secret parameter is not logged');
    assert.ok(!logs.includes(SSH_TEST_PASSWORD), 'the credential password is not logged');
  });

  test('output is capped per step per target at OPSCONDUCTOR_MAX_OUTPUT_BYTES with a visible marker', async () => {
    const target = await createTarget();
    const job = await createJob({
      steps: [
        { type: 'command', name: 'big', command: 'yes 0123456789abcdef | head -c 200000; yes err | head -c 100000 >&2' },
        { type: 'command', name: 'small', command: 'echo small' },
      ],
    });
    const runId = await startRun(job.id, { target_ids: [target.id] });
    const run = await waitForRun(runId);
    assert.equal(run.status, 'completed', JSON.stringify(run));
    const big = stepOf(run, target.id, 0);
    assert.equal(big.truncated, true);
    assert.ok(big.stdout.endsWith(MARKER), 'stdout ends with the truncation marker');
    assert.equal(big.stdout, '0123456789abcdef\n'.repeat(200_000).slice(0, MAX_OUTPUT) + MARKER);
    assert.ok(big.stderr.endsWith(MARKER), 'stderr is capped too');
    assert.equal(Buffer.byteLength(big.stderr), MAX_OUTPUT + MARKER.length);
    const small = stepOf(run, target.id, 1);
    assert.equal(small.truncated, false);
    assert.equal(small.stdout, 'small\n');
  });

  test('live output is capped like stored output: output events and the /output tail stop at OPSCONDUCTOR_MAX_OUTPUT_BYTES', async () => {
    const target = await createTarget();
    const job = await createJob({ steps: [{ type: 'command', name: 'big', command: 'yes 0123456789abcdef | head -c 200000' }] });
    const runId = await startRun(job.id, { target_ids: [target.id] });
    const run = await waitForRun(runId);
    assert.equal(run.status, 'completed', JSON.stringify(run));
    assert.equal(stepOf(run, target.id, 0).truncated, true);

    const res = await events(runId);
    const streamed = (await readSse(res.body as ReadableStream<Uint8Array>)).filter((e) => e.event === 'output');
    const streamedBytes = Buffer.byteLength(streamed.map((e) => String(e.data.text)).join(''));
    const tail = await api('GET', `/job-runs/${runId}/output?target_id=${target.id}&step_index=0`);
    assert.equal(tail.statusCode, 200, tail.body);
    const tailBytes = Buffer.byteLength(tail.json().data);
    assert.ok(
      streamedBytes <= MAX_OUTPUT + MARKER.length && tailBytes <= MAX_OUTPUT + MARKER.length,
      `output events carried ${streamedBytes} bytes and the /output tail returned ${tailBytes} bytes for a cap of ${MAX_OUTPUT}`,
    );
  });

  test('a secret split across output chunks is still masked in the live output events', async () => {
    const secret = `split-${randomBytes(8).toString('hex')}`;
    const target = await createTarget();
    const job = await createJob({
      parameters: { token: { type: 'string', secret: true, required: true } },
      steps: [{ type: 'command', name: 'halves', command: `printf '%s' "{{ params.token | slice: 0, 10 }}"; sleep 0.5; printf '%s\\n' "{{ params.token | slice: 10, 100 }}"` }],
    });
    const runId = await startRun(job.id, { target_ids: [target.id], parameters: { token: secret } });
    const run = await waitForRun(runId);
    assert.equal(run.status, 'completed', JSON.stringify(run));
    assert.equal(stepOf(run, target.id, 0).stdout, '***\n', 'stored stdout is masked');
    const streamed = (await readSse((await events(runId)).body as ReadableStream<Uint8Array>)).filter((e) => e.event === 'output');
    assert.ok(streamed.length >= 1);
    const text = streamed.map((e) => String(e.data.text)).join('');
    assert.ok(!text.includes(secret), `the output events reassemble the secret: ${JSON.stringify(streamed.map((e) => e.data.text))}`);
    const tail = (await api('GET', `/job-runs/${runId}/output?target_id=${target.id}&step_index=0`)).json();
    assert.ok(!String(tail.data).includes(secret), `the /output tail shows the secret: ${JSON.stringify(tail.data)}`);
  });

  test('SSE: events arrive live while the step runs, every frame has an id, the stream ends after run_finished, Last-Event-ID resumes', async () => {
    const { baseUrl } = env;
    const target = await createTarget();
    const job = await createJob({ steps: [{ type: 'command', name: 'live', command: 'echo first; sleep 2; echo second' }] });
    const runId = await startRun(job.id, { target_ids: [target.id] });
    const res = await events(runId);
    assert.equal(res.status, 200);
    assert.match(String(res.headers.get('content-type')), /^text\/event-stream/);

    let liveChecked = false;
    const received = await readSse(res.body as ReadableStream<Uint8Array>, async (event) => {
      if (!liveChecked && event.event === 'output' && String(event.data.text).includes('first')) {
        liveChecked = true;
        const run = await getRun(runId);
        const step = stepOf(run, target.id, 0);
        assert.equal(step.status, 'running', 'the first output arrived while the step was still running');
        assert.equal(step.finished_at, null);
        const tail = (await api('GET', `/job-runs/${runId}/output?target_id=${target.id}&step_index=0&offset=0`)).json();
        assert.equal(tail.data, 'first\n');
        assert.equal(tail.next_offset, 6);
        assert.equal(tail.complete, false);
      }
    });
    assert.ok(liveChecked, 'an output event with "first" arrived');
    const types = received.map((e) => e.event);
    assert.equal(types.at(-1), 'run_finished', 'the stream ends right after run_finished');
    assert.deepEqual(
      types.filter((t) => t !== 'output'),
      ['step_started', 'step_finished', 'target_finished', 'run_finished'],
    );
    const ids = received.map((e) => e.id);
    assert.deepEqual(
      ids,
      [...ids].sort((a, b) => a - b),
      'ids increase',
    );
    assert.equal(new Set(ids).size, ids.length);
    const output = received.filter((e) => e.event === 'output');
    assert.equal(output.map((e) => e.data.text).join(''), 'first\nsecond\n');
    const firstOutput = output.find((e) => String(e.data.text).includes('first')) as SseEvent;
    const stepFinished = received.find((e) => e.event === 'step_finished') as SseEvent;
    assert.ok(stepFinished.at - firstOutput.at >= 1000, `first output came ${stepFinished.at - firstOutput.at} ms before the step finished`);
    assert.equal(firstOutput.data.target_id, target.id);
    assert.equal(firstOutput.data.step_index, 0);
    assert.equal(firstOutput.data.stream, 'stdout');
    assert.equal(stepFinished.data.status, 'succeeded');
    assert.equal(stepFinished.data.exit_code, 0);
    assert.equal(received.find((e) => e.event === 'target_finished')?.data.status, 'succeeded');
    assert.equal(received.at(-1)?.data.status, 'completed');

    const resumeAfter = firstOutput.id;
    const resumed = await events(runId, resumeAfter);
    assert.equal(resumed.status, 200);
    const rest = await readSse(resumed.body as ReadableStream<Uint8Array>);
    assert.deepEqual(
      rest.map((e) => [e.id, e.event]),
      received.filter((e) => e.id > resumeAfter).map((e) => [e.id, e.event]),
      'only the events after Last-Event-ID, ending with run_finished',
    );

    const run = await getRun(runId);
    assert.equal(run.status, 'completed');
    assert.equal(stepOf(run, target.id, 0).stdout, 'first\nsecond\n');
    const tail = (await api('GET', `/job-runs/${runId}/output?target_id=${target.id}&step_index=0&offset=6`)).json();
    assert.equal(tail.data, 'second\n');
    assert.equal(tail.offset, 6);
    assert.equal(tail.next_offset, 13);
    assert.equal(tail.complete, true);

    assert.equal((await api('GET', '/job-runs/999999/events')).statusCode, 404);
    assert.equal((await fetch(`${baseUrl}/job-runs/${runId}/events`)).status, 401, 'the event stream needs a token');
  });
});
