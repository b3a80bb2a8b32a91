/**
 * Run by test/support/sqlite-faults.ts in a process of its own: takes the SQLite
 * write lock on the file named by argv[2] (`BEGIN IMMEDIATE`), says `locked`,
 * and holds it until a line arrives on stdin; then commits one row and exits.
 */
import Database from 'better-sqlite3';

const sqlite = new Database(process.argv[2]!);
sqlite.pragma('busy_timeout = 10000');
sqlite.exec('BEGIN IMMEDIATE');
sqlite.prepare('INSERT INTO seen_events (event_id, expires_at) VALUES (?, ?)').run(`lock-holder-${process.pid}`, Date.now() + 60_000);
process.stdout.write('locked\n');
process.stdin.once('data', () => {
  sqlite.exec('COMMIT');
  sqlite.close();
  process.exit(0);
});
