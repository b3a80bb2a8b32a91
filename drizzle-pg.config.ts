import { defineConfig } from 'drizzle-kit';

export default defineConfig({
  dialect: 'postgresql',
  schema: './src/runtime/store/postgres/schema.ts',
  out: './drizzle/pg',
});
