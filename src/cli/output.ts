/**
 * How the CLI talks: progress and messages go to stderr, data to stdout (plain or --json), so
 * `tsplice … --json | jq` always sees only the data.
 */
export function progress(message: string): void {
  process.stderr.write(`${message}\n`);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v), 2)}\n`);
}
