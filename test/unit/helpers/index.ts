import type { CliIo } from '../../../src/cli/main.js';

export interface CapturedIo extends CliIo {
  outLines: string[];
  errLines: string[];
}

/** A CLI io that records output and serves `stdin` as standard input. */
export function captureIo(stdin: Buffer | string = ''): CapturedIo {
  const outLines: string[] = [];
  const errLines: string[] = [];
  return {
    outLines,
    errLines,
    out: (l) => outLines.push(l),
    err: (l) => errLines.push(l),
    readStdin: async () => Buffer.from(stdin),
  };
}

/** The rejection of a promise, for assertions on its class and message. */
export async function rejectionOf(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    if (err instanceof Error) return err;
    throw new Error(`rejected with a non-Error: ${String(err)}`);
  }
  throw new Error('expected a rejection, but the promise resolved');
}

/** Runs `work` and counts the event loop's turns meanwhile: work done in one piece lets none through. */
export async function turnsDuring<T>(work: () => Promise<T>): Promise<{ value: T; turns: number }> {
  let turns = 0;
  let counting = true;
  const tick = () => {
    if (!counting) return;
    turns += 1;
    setImmediate(tick);
  };
  setImmediate(tick);
  try {
    return { value: await work(), turns };
  } finally {
    counting = false;
  }
}
