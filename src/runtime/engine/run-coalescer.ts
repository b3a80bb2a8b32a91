/**
 * One run at a time of a repeatable piece of work; a request during a run asks for
 * one more pass of it instead of a second run beside it.
 *
 *   idle ──run()──▶ running ──(no request meanwhile, or `keepGoing()` false)──▶ idle
 *                   running ──run() or again()──▶ running, one more pass after this one
 *
 * The engine's tick, its claim rounds and its reading of foreign commits each run
 * through one of these.
 */
export class RunCoalescer<P, T> {
  private current: Promise<T> | undefined;
  private requested = false;

  /**
   * @param pass one pass of the work; its result is collected for `finish`.
   * @param finish runs once after the last pass, with every pass's result.
   * @param keepGoing checked before each further pass (false: stop after this one).
   */
  constructor(
    private readonly pass: () => Promise<P>,
    private readonly finish: (passes: P[]) => Promise<T>,
    private readonly keepGoing: () => boolean,
  ) {}

  /** Starts a run, or asks the current one for one more pass and returns it. */
  run(): Promise<T> {
    if (this.current) {
      this.requested = true;
      return this.current;
    }
    const run = this.loop().finally(() => {
      this.current = undefined;
    });
    this.current = run;
    return run;
  }

  /** Asks the current run (from inside a pass) for one more pass. */
  again(): void {
    this.requested = true;
  }

  /** The run in progress, if any. */
  get inProgress(): Promise<T> | undefined {
    return this.current;
  }

  private async loop(): Promise<T> {
    const passes: P[] = [];
    do {
      this.requested = false;
      passes.push(await this.pass());
    } while (this.requested && this.keepGoing());
    return this.finish(passes);
  }
}
