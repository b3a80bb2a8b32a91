export { openPostgresStore, PostgresFlowStore, type PostgresStoreOptions, type PostgresStoreTimeouts } from './runtime/pg-store.js';
