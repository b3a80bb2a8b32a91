import pg from 'pg';
const c = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
await c.connect();
await c.query('CREATE TEMP TABLE IF NOT EXISTS x_probe (id int primary key, v int)');
await c.query('CREATE TABLE IF NOT EXISTS bench_probe_pg (id int primary key, v int)');
await c.query('INSERT INTO bench_probe_pg VALUES (1, 0) ON CONFLICT DO NOTHING');
for (const q of ['SELECT 1', 'UPDATE bench_probe_pg SET v = v + 1 WHERE id = 1']) {
  const t: number[] = [];
  for (let i = 0; i < 200; i++) { const s = performance.now(); await c.query(q); t.push(performance.now() - s); }
  t.sort((a, b) => a - b);
  console.log(q, 'p50', t[100].toFixed(2), 'p90', t[180].toFixed(2));
}
await c.query('DROP TABLE bench_probe_pg');
await c.end();
