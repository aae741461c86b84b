#!/usr/bin/env node
/**
 * @module cli/main
 * `chokepoint <command> [...]`: dispatches to `cmd-<command>.ts`, one file per command, each
 * exporting `run(argv: string[]): Promise<number>` (the exit status) and `summary: string`.
 * Exit status: 0 ok, 1 some input failed, 2 usage.
 */
import { UsageError } from '../util/errors.js';
import { exitQuietlyOnEpipe } from '../util/epipe.js';

const COMMANDS: Record<string, string> = {
  showcase: 'controller + demo fleet + the 2021 story in the web dashboard (what npm start runs)',
  demo: 'analyze a demo capture generated on the fly and print the summary (terminal only)',
  analyze: 'name every flow in captures (pcap/pcapng) and print flow records',
  gen: 'write synthetic captures with ground truth',
  lint: 'check a policy for collateral damage, shadowing, and more',
  simulate: 'apply a policy to captures offline (what-if), optionally diff against a baseline',
  registry: 'import a registry dump or list into a policy',
  enforce: 'run inline on NFQUEUE and enforce a policy',
  lab: 'network-namespace lab: up | down | status',
  probe: 'measure throttling/blocking of a name on a path',
  'probe-server': 'cooperating measurement server for probe',
  controller: 'run the fleet controller (serve) and bootstrap it: tokens, root key, signing keys',
  ctl: 'client of the fleet controller: registry, versions, approvals, audit, tokens',
};

export interface Command {
  run(argv: string[]): Promise<number>;
}

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([k, v]) => `  ${k.padEnd(14)} ${v}`);
  return `usage: chokepoint <command> [options]\n\ncommands:\n${lines.join('\n')}\n\n'chokepoint <command> --help' for a command's options.\n`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name ? 0 : 2;
  }
  if (name === '--version') {
    process.stdout.write('chokepoint 0.1.0\n');
    return 0;
  }
  if (!(name in COMMANDS)) {
    process.stderr.write(`chokepoint: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  try {
    const mod = (await import(`./cmd-${name}.js`)) as Command;
    return await mod.run(rest);
  } catch (e) {
    // node:util parseArgs errors (unknown option, missing value, stray positional) are usage errors
    // for every command, so commands call parseArgs directly without wrapping it
    if (e instanceof UsageError || String((e as NodeJS.ErrnoException)?.code).startsWith('ERR_PARSE_ARGS_')) {
      process.stderr.write(`chokepoint ${name}: ${(e as Error).message}\n`);
      return 2;
    }
    const err = e as NodeJS.ErrnoException;
    if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes(`cmd-${name}`)) {
      process.stderr.write(`chokepoint: command '${name}' is not available in this build\n`);
      return 2;
    }
    process.stderr.write(`chokepoint ${name}: ${err?.message ?? String(e)}\n`);
    return 1;
  }
}

// `chokepoint … | head`: a closed reader ends the run quietly (no EPIPE stack trace)
exitQuietlyOnEpipe(process.stdout);

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(String(e?.stack ?? e) + '\n');
    process.exitCode = 1;
  },
);
