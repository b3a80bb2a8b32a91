import type Database from 'better-sqlite3';

const cache = new WeakMap<Database.Database, Map<string, Database.Statement>>();

/** `sqlite.prepare(text)`, prepared once per connection (a new connection prepares again). */
export function cachedStatement(sqlite: Database.Database, text: string): Database.Statement {
  let statements = cache.get(sqlite);
  if (!statements) cache.set(sqlite, (statements = new Map()));
  let statement = statements.get(text);
  if (!statement) statements.set(text, (statement = sqlite.prepare(text)));
  return statement;
}
