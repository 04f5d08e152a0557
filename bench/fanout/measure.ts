/** The timed part of the fan-out benchmark: set-up and warm-up for all, then interleaved rounds. */
import { type BenchContext, type Contender, type Series } from './contenders.ts';
import { cpuDelta, fleetMs, load1 } from './cpu.ts';
import { type Fleet } from './fleet.ts';
import { median, round, sleep } from './util.ts';

/** Set-up and warm-up for all, then RUNS rounds, each running every contender once in rotating order. */
export async function measure(ctx: BenchContext, contenders: Contender[], fleet: Fleet): Promise<Series[]> {
  for (const c of contenders) {
    await c.setup();
  }
  const series: Series[] = contenders.map((c) => ({ tool: c.tool, label: c.label, runsMs: [], medianMs: NaN, allSucceeded: true, succeeded: [], cpu: { client: [], sshd: [], db: [] }, load1: [] }));
  for (let round_ = 0; round_ < ctx.settings.runs; round_++) {
    for (let k = 0; k < contenders.length; k++) {
      const index = (k + round_) % contenders.length;
      await timeRun(ctx, contenders[index] as Contender, series[index] as Series, fleet, round_);
    }
  }
  for (const [i, c] of contenders.entries()) {
    const s = series[i] as Series;
    s.medianMs = round(median(s.runsMs));
    Object.assign(s, await c.finish());
  }
  return series;
}

/** One timed run of `c` in round `round_`, with the CPU it cost around it; logged and added to `s`. */
async function timeRun(ctx: BenchContext, c: Contender, s: Series, fleet: Fleet, round_: number): Promise<void> {
  const load = load1();
  const [client0, sshd0, db0] = [c.clientCpu(), fleetMs(fleet.sshdPids), await c.dbCpu()];
  const r = await c.run();
  // Let sshd reap the last sessions before reading its counters.
  await sleep(300);
  const [client1, sshd1, db1] = [c.clientCpu(), fleetMs(fleet.sshdPids), await c.dbCpu()];
  const cpu = { client: round(r.clientCpuMs ?? client1 - client0), sshd: round(sshd1 - sshd0), db: round(cpuDelta(db0, db1)) };
  ctx.log(`${c.label}: run ${round_ + 1}: ${round(r.wallMs)} ms, ${r.succeeded}/${ctx.settings.targets} succeeded · cpu ms ${JSON.stringify(cpu)} · load ${load}${r.extra ? ` · ${JSON.stringify(r.extra)}` : ''}`);
  s.runsMs.push(round(r.wallMs));
  s.succeeded.push(r.succeeded);
  s.allSucceeded &&= r.ok;
  s.cpu.client.push(cpu.client);
  s.cpu.sshd.push(cpu.sshd);
  s.cpu.db.push(cpu.db);
  s.load1.push(load);
}
