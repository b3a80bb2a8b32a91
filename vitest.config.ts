import { defineConfig } from 'vitest/config';

const shared = {
  globalSetup: ['./test/support/global-setup.ts'],
  reporters: ['default', './test/support/count-reporter.ts'],
  // Timeouts catch hangs; they measure nothing (speed lives in bench/). Generous: on 2 cores kept busy,
  // the PostgreSQL setup of 1,200 waiting flows (engine.test.ts) alone took over 120 s.
  testTimeout: 300_000,
  hookTimeout: 120_000,
};

/** The same contract suites run against SQLite (every test) and PostgreSQL (the store-neutral ones). */
const contractSuites = [
  'test/manager.test.ts',
  'test/engine.test.ts',
  'test/property.test.ts',
  'test/postgres.test.ts',
  'test/inbox-cap.test.ts',
  'test/hostile-input.test.ts',
  'test/input-rules.test.ts',
  'test/any-of.test.ts',
  'test/start-and-park.test.ts',
  'test/recurring.test.ts',
  'test/start-or-deliver.test.ts',
  'test/doctor.test.ts',
  'test/commit-batch.test.ts',
  'test/engine-claim-ahead.test.ts',
  'test/engine-seams.test.ts',
  'test/notification-claims.test.ts',
  'test/event-ids.test.ts',
];

export default defineConfig({
  test: {
    ...shared,
    projects: [
      { test: { ...shared, name: 'sqlite', include: ['test/**/*.test.ts'], exclude: ['test/postgres.test.ts'] } },
      { test: { ...shared, name: 'postgres', include: contractSuites, env: { TASKFLOW_TEST_DIALECT: 'postgres' } } },
    ],
  },
});
