import cluster from 'node:cluster';

import { AggregatorRegistry, type Registry } from 'prom-client';

/*
 * In a cluster a scrape reaches one worker at random (the primary hands out connections), so
 * every worker answers with the whole cluster's metrics: it asks the primary, which collects each
 * worker's registry over the cluster's IPC channel (prom-client's AggregatorRegistry) and sums them.
 */

const REQUEST = 'rtcstats:cluster-metrics-request';
const RESPONSE = 'rtcstats:cluster-metrics-response';
const TIMEOUT_MS = 10_000;

interface Message {
  type?: string;
  id?: number;
  text?: string;
  error?: string;
}

/** In the primary: answers workers' requests for the cluster's metrics. */
export function serveClusterMetrics(): void {
  const aggregator = new AggregatorRegistry();
  cluster.on('message', (worker, message: Message) => {
    if (message?.type !== REQUEST) return;
    aggregator.clusterMetrics().then(
      (text) => worker.send({ type: RESPONSE, id: message.id, text }),
      (err: Error) => worker.send({ type: RESPONSE, id: message.id, error: err.message }),
    );
  });
}

/**
 * In a worker: offers `registry` to the primary's collection and returns a function giving the
 * cluster's metrics in the Prometheus text format; undefined outside a cluster.
 */
export function clusterMetricsSource(registry: Registry): (() => Promise<string>) | undefined {
  if (!cluster.isWorker) return undefined;
  // Constructing one installs prom-client's worker-side listener.
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([registry]);
  const pending = new Map<number, { resolve: (text: string) => void; reject: (err: Error) => void; timer: NodeJS.Timeout }>();
  let next = 0;
  process.on('message', (message: Message) => {
    if (message?.type !== RESPONSE || message.id === undefined) return;
    const request = pending.get(message.id);
    if (request === undefined) return;
    pending.delete(message.id);
    clearTimeout(request.timer);
    if (message.error !== undefined) request.reject(new Error(`cluster metrics: ${message.error}`));
    else request.resolve(message.text ?? '');
  });
  return () =>
    new Promise<string>((resolve, reject) => {
      const id = ++next;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error('cluster metrics: the primary did not answer'));
      }, TIMEOUT_MS);
      pending.set(id, { resolve, reject, timer });
      process.send!({ type: REQUEST, id });
    });
}
