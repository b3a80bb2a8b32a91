#!/usr/bin/env node
/**
 * The `taskflow` operator CLI: list, inspect, cancel, resume, signal and prune
 * flows, and deliver events, over the database an application runs on.
 * Run `taskflow help` for usage.
 */
import { runCli } from './run.js';

// `taskflow list | head` closes the pipe early: that is not an error worth a stack trace.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

const code = await runCli(process.argv.slice(2), {
  stdout: { write: (text) => void process.stdout.write(text) },
  stderr: { write: (text) => void process.stderr.write(text) },
  env: process.env,
});
process.exitCode = code;
