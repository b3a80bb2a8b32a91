import { pgDeliverAll } from '/work/wt/pg/bench/pg-burst.ts';
const n = Number(process.argv[2] ?? 10000);
const path = (process.argv[3] ?? 'batched') as 'batched' | 'before';
console.log(path, n, await pgDeliverAll(n, path));
process.exit(0);
