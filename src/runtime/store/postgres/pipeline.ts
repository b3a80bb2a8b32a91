import type pg from 'pg';

/**
 * Statements sent back to back, one round trip for all, each one parsed and
 * planned once per connection.
 *
 * A commit's load (`BEGIN`, the event key's lock, its reads) and its write plus
 * `COMMIT` are each a short list of statements. Sent as one simple query they
 * cost one round trip, but the server parses and plans every statement again on
 * every commit, which costs more than the round trip itself. Sent here instead,
 * as named prepared statements (their values as parameters) on pg's pipeline
 * mode (pg ≥ 8.23), they still cost one round trip (one TCP write, answers read
 * as they come) and the server plans each statement text once per connection.
 * On a pg without pipeline mode they go one after the other (same outcome, one
 * round trip each).
 *
 * Inside a transaction a statement that fails aborts it: those after it fail
 * too (`25P02`), a `COMMIT` behind it rolls back, and the error of the first
 * one that failed is thrown once every answer came.
 */

/** One statement: its text, its values (`$1`…), and whether its text is a template worth preparing. */
export interface Statement {
  text: string;
  values?: unknown[];
  /** The text is the same on every call (only `values` vary): prepared once per connection. */
  prepare?: boolean;
}

/** Most statement texts given a name (each connection prepares those it sends); past it, texts go unnamed. */
const MAX_NAMED = 256;
const names = new Map<string, string>();

/** The name of a template's prepared statement (the same on every connection). */
function nameOf(text: string): string | undefined {
  let name = names.get(text);
  if (name === undefined && names.size < MAX_NAMED) names.set(text, (name = `taskflow_${names.size + 1}`));
  return name;
}

/** What of `pg.Client` pipelining needs: a mode that may be switched while the client is idle, and its socket. */
interface Pipelinable {
  pipeline: boolean;
  readyForQuery: boolean;
  connection: { stream: { cork?(): void; uncork?(): void } };
}

function pipelinable(client: pg.ClientBase): Pipelinable | undefined {
  const c = client as unknown as Partial<Pipelinable> & { _queryQueue?: unknown[] };
  return typeof c.pipeline === 'boolean' && c.readyForQuery === true && Array.isArray(c._queryQueue) && c._queryQueue.length === 0
    ? (c as Pipelinable)
    : undefined;
}

function config(statement: Statement): pg.QueryConfig {
  const name = statement.prepare ? nameOf(statement.text) : undefined;
  return { text: statement.text, ...(statement.values ? { values: statement.values } : {}), ...(name ? { name } : {}) };
}

/** Sends `statements` on `client` (idle, checked out) in one round trip; their results, in order. */
export async function sendAll(client: pg.ClientBase, statements: readonly Statement[]): Promise<pg.QueryResult[]> {
  if (statements.length === 1) return [await client.query(config(statements[0]!))];
  const pipelined = pipelinable(client);
  if (!pipelined) {
    const results: pg.QueryResult[] = [];
    for (const statement of statements) results.push(await client.query(config(statement)));
    return results;
  }
  const was = pipelined.pipeline;
  pipelined.pipeline = true;
  const stream = pipelined.connection.stream;
  const sent: Promise<pg.QueryResult>[] = [];
  // One TCP write for all of them.
  stream.cork?.();
  try {
    for (const statement of statements) sent.push(client.query(config(statement)));
  } catch (error) {
    // Refused before it was sent: those sent before it are still answered first.
    sent.push(Promise.reject(error));
  } finally {
    stream.uncork?.();
  }
  const settled = await Promise.allSettled(sent);
  // Every answer came: the client is idle again, its mode may go back.
  pipelined.pipeline = was;
  const failed = settled.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((outcome) => (outcome as PromiseFulfilledResult<pg.QueryResult>).value);
}
