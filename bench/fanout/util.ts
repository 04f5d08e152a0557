/** Small helpers shared by the fan-out benchmark's modules: the log line, median and rounding. */

/** Writes `line` to stderr behind the time of day (hh:mm:ss.mmm). */
export const log = (line: string) => process.stderr.write(`[${new Date().toISOString().slice(11, 23)}] ${line}\n`);

/** The median of `xs`; NaN when empty. */
export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length === 0 ? NaN : s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

/** `x` rounded to a whole number. */
export const round = (x: number) => Math.round(x);

/** Kilobytes as megabytes with one decimal. */
export const mb = (kb: number) => Math.round(kb / 102.4) / 10;

/** Resolves after `ms`. */
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
