/**
 * @module bench/registry-gen
 * A synthetic registry for the box-level benchmarks (bench:reload, bench:simulate): N distinct names
 * (an exact list) and M IPv4 /24 CIDRs from a fixed xorshift PRNG, written as a policy with two list
 * files. `changeName(i)` rewrites the name list with line i changed (atomic rename), for reloads.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface BenchRegistry {
  dir: string;
  policy: string;
  /** Replace name i by another one and rewrite the name list (one rename: never half-written). */
  changeName(i: number): void;
}

function put(dir: string, name: string, text: string): void {
  writeFileSync(join(dir, name + '.tmp'), text);
  renameSync(join(dir, name + '.tmp'), join(dir, name));
}

export function writeRegistry(dir: string, n: number, m: number): BenchRegistry {
  let x = 0x9e3779b9;
  const rnd = (): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  const names: string[] = [];
  for (let i = 0; i < n; i++) names.push(`n${i.toString(36)}.${rnd().toString(36)}.example`);
  const nets: string[] = [];
  for (let i = 0; i < m; i++) {
    const a = rnd();
    nets.push(`${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.0/24`);
  }
  put(dir, 'names.txt', names.join('\n') + '\n');
  put(dir, 'nets.txt', nets.join('\n') + '\n');
  put(
    dir,
    'policy.yaml',
    `version: 1
default: allow
rules:
  - id: names
    action: block
    match:
      host: {exact_file: names.txt}
  - id: nets
    action: block
    match:
      dest_ip_file: nets.txt
`,
  );
  return {
    dir,
    policy: join(dir, 'policy.yaml'),
    changeName(i) {
      names[i] = `changed${i}.example`;
      put(dir, 'names.txt', names.join('\n') + '\n');
    },
  };
}
