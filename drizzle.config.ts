import { defineConfig } from 'drizzle-kit';

export default defineConfig({
  dialect: 'sqlite',
  schema: './src/runtime/schema.ts',
  out: './drizzle/sqlite',
});
