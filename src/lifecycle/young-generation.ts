import v8 from 'node:v8';

const GROWTH_FLAG = '--semi-space-growth-factor';
/** V8's default factor. */
const DEFAULT_GROWTH = 2;

/** True when the operator set V8's young-generation growth (node flag or NODE_OPTIONS): then it is left alone. */
export function growthSetByOperator(execArgv: readonly string[], nodeOptions: string | undefined): boolean {
  const words = [...execArgv, ...(nodeOptions ?? '').split(/\s+/)];
  return words.some((w) => w === GROWTH_FLAG || w.startsWith(`${GROWTH_FLAG}=`) || w === '--semi_space_growth_factor' || w.startsWith('--semi_space_growth_factor='));
}

/**
 * Boot (thousands of modules, Nest's container) allocates in bursts that survive, and V8 answers by
 * doubling the young generation up to its 16 MiB semi-space maximum, which it then keeps for the
 * life of the process while the server at rest needs a fraction of it. Held at its initial size
 * during boot and released when the server listens, it grows again only as far as the load asks.
 * Returns the release.
 */
export function holdYoungGenerationDuringBoot(execArgv = process.execArgv, nodeOptions = process.env.NODE_OPTIONS): () => void {
  if (growthSetByOperator(execArgv, nodeOptions)) return () => {};
  v8.setFlagsFromString(`${GROWTH_FLAG}=1`);
  return () => v8.setFlagsFromString(`${GROWTH_FLAG}=${DEFAULT_GROWTH}`);
}
