import { defineConfig } from 'drizzle-kit';

export default defineConfig({
  dialect: 'postgresql',
  schema: './src/runtime/schema-pg.ts',
  out: './drizzle/pg',
});
