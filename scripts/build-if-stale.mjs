// Builds dist/ (tsc -p tsconfig.build.json) only when it is missing or older than
// a source file, so `npm run demo` starts at once when dist/ is fresh.
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function newest(path) {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(0, ...readdirSync(path).map((entry) => newest(join(path, entry))));
}

function builtAt() {
  try {
    return statSync('dist/index.js').mtimeMs;
  } catch {
    return -1;
  }
}

const sources = Math.max(newest('src'), newest('tsconfig.build.json'), newest('tsconfig.json'), newest('package.json'));
if (builtAt() < sources) {
  process.stdout.write('building dist/ (tsc)...\n');
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
}
