/** Where a long step reports progress: one line at a time, for a person to read. */
export type Log = (message: string) => void;
