import { execFileSync } from 'node:child_process';

/** Builds dist/ once: the README examples and the CLI tests run the built package as users do. */
export default function setup(): void {
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
}
