/**
 * Medians and spreads for the benchmarks: one home, so that every bench prints its timings the
 * same way ("median (min–max, n=N)").
 */

export interface Spread {
  n: number;
  median: number;
  min: number;
  max: number;
}

/** The middle value (the mean of the two middle ones for an even count); NaN for none. */
export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Count, median and extremes of the finite values; undefined when there are none. */
export function spreadOf(values: readonly (number | undefined)[]): Spread | undefined {
  const s = values.filter((v): v is number => v !== undefined && Number.isFinite(v)).sort((a, b) => a - b);
  if (s.length === 0) return undefined;
  return { n: s.length, median: median(s), min: s[0] as number, max: s.at(-1) as number };
}

/** "1.5 (0.9–3.2, n=17)", each value divided by `scale`. */
export function formatSpread(spread: Spread | undefined, scale = 1, digits = 1): string {
  if (!spread) return '-';
  const f = (v: number): string => (v / scale).toFixed(digits);
  return `${f(spread.median)} (${f(spread.min)}–${f(spread.max)}, n=${spread.n})`;
}
