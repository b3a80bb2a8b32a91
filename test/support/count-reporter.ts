import type { Reporter, TestCase, TestModule } from 'vitest/node';

/**
 * Prints the plain closing line CI reads: `N passed, N failed, N skipped`.
 * A module that failed to load counts as a failure.
 */
export default class CountReporter implements Reporter {
  private passed = 0;
  private failed = 0;
  private skipped = 0;

  onTestCaseResult(testCase: TestCase): void {
    const state = testCase.result().state;
    if (state === 'passed') this.passed++;
    else if (state === 'failed') this.failed++;
    else this.skipped++;
  }

  onTestRunEnd(modules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    const brokenModules = modules.filter((m) => m.state() === 'failed' && [...m.children.allTests()].length === 0).length;
    const failed = this.failed + brokenModules + unhandledErrors.length;
    process.stdout.write(`\n${this.passed} passed, ${failed} failed, ${this.skipped} skipped\n`);
  }
}
