export { openPostgresStore, PostgresFlowStore, type PostgresStoreOptions } from './runtime/pg-store.js';
