/**
 * One engine process of the scale-out benchmark (spawned by bench/pg-scale.ts):
 *   pg-scale-child.ts <postgres url>
 * Opens the runtime, starts its engine, reports "ready", then every 50 ms how many
 * flows reached its onResume and when the first and last did; exits on "stop".
 */
import { openTaskflow } from '../src/index.js';
import { preciseNow } from './pg-support.js';

const [url] = process.argv.slice(2);
if (!url || !process.send) {
  console.error('usage: fork pg-scale-child.ts <postgres url> (with an IPC channel)');
  process.exit(2);
}
let handled = 0;
let first = 0;
let last = 0;
const tf = await openTaskflow({
  database: url,
  tickInterval: '5s',
  onResume: () => {
    const now = preciseNow();
    if (handled++ === 0) first = now;
    last = now;
  },
});
await tf.start();
const report = (): void => void process.send?.({ handled, first, last });
process.send({ ready: true });
const timer = setInterval(report, 50);
process.on('message', (message: unknown) => {
  if (message !== 'stop') return;
  clearInterval(timer);
  report();
  void tf.close().then(() => process.exit(0));
});
