import type { BenchContext, Figures } from '../lib/context.js';
import { coldSync } from './common.js';

/** 1. cold-sync: N ManagedSecrets exist before the operator starts; time until all are Ready. */
export async function coldSyncScenario(ctx: BenchContext, n: number): Promise<Figures> {
  const run = await coldSync(ctx, 'cold-sync', n);
  try {
    const { peakRssMiB } = await run.operator.stop();
    return { ...run.figures, peakRssMiB: Math.round(peakRssMiB * 10) / 10, requests: run.requests };
  } finally {
    await run.cleanup();
  }
}
