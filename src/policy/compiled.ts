/**
 * @module policy/compiled
 * The compiled registry file: a policy's lookup indexes (label-walk hash table and its presence filter,
 * prefix tries and jump tables, the pattern automaton) as typed arrays in one binary file, so a box or
 * `simulate` loads a 10^6-name registry by reading the file into one buffer and taking typed-array
 * views of it — no list text is parsed, no index is rebuilt. Written by `chokepoint registry compile`.
 *
 * Layout (little-endian):
 *   0  magic "CHKPREG\0" · 8 u32 format version · 12 u32 byte-order mark 0x01020304 · 16 u32 meta length
 *   20 u32 reserved · 24 f64 file length · 32 sha256 of the sources (policy text + every list file)
 *   64 sha256 of bytes [128, end) · 96 reserved (zero) · 128 meta (JSON, UTF-8) · then the data area
 *   (64-byte aligned): one section per array, placed and typed by the meta's section table. Sections
 *   start on a cache line relative to the file, so a 32-byte hash slot does not straddle two lines
 *   when the buffer itself starts on one.
 * The meta carries the policy's own text and its parsed value with the rules' positions (re-read by
 * the policy loader with empty lists: the rules, actions and inspection come through the same checks
 * as a text policy, and the `yaml` package is not loaded; a file without the value is parsed from
 * the text), which rules the indexes
 * number, and each source file's sha256. Loading checks the header, the body hash, every section's
 * bounds and then every offset and link inside the structures (`fromParts`), so a truncated,
 * corrupted or hostile file is refused with a {@link CompiledPolicyError} and never read out of bounds.
 * Given the text policy too, a file whose sources differ from it (stale, or made from another policy)
 * is refused, naming the file that changed.
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  fstatSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, isAbsolute, join, relative } from 'node:path';
import { ChokepointError } from '../util/errors.js';
import { Matcher, type MatcherIndexes } from './compile.js';
import { DomainTable, type DomainTableParts } from './domains.js';
import { PatternAutomaton, type PatternAutomatonParts } from './automaton.js';
import { PrefixTrie, type PrefixTrieParts } from './trie.js';
import { parsePolicy, parsePolicyAndValue } from './load.js';
import { isParsedPolicy, type ParsedPolicy } from './source.js';
import type { Policy } from './types.js';

export const COMPILED_MAGIC = 'CHKPREG\0';
export const COMPILED_VERSION = 1;
const BOM = 0x01020304;
const HEADER = 128;
/** Alignment of the data area and of every section (a cache line). */
const ALIGN = 64;
/** Largest compiled file accepted (the 10^6 + 10^5 registry is ~90 MB). */
const MAX_FILE = 2 ** 31;

export class CompiledPolicyError extends ChokepointError {
  constructor(
    readonly file: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super('ERR_COMPILED', `${file}: ${detail}`, options);
  }
}

/** One source file of a compiled policy: path relative to the policy's directory, sha256, size. */
export interface CompiledSource {
  path: string;
  sha256: string;
  bytes: number;
}

type ArrayKind = 'i32' | 'u8';
interface Section {
  name: string;
  type: ArrayKind;
  /** Byte offset in the data area (64-aligned when written; 8 is required) and element count. */
  off: number;
  len: number;
}

interface Meta {
  format: number;
  policyFile: string;
  policyText: string;
  /** The policy text's parsed value and rule positions, so that loading skips the `yaml` package;
   *  absent (older files, or a value JSON cannot hold) means parse `policyText`. */
  policyParsed?: ParsedPolicy;
  sources: CompiledSource[];
  compiledAt: string;
  orders: number[];
  lists: { order: number; field: string; entries: number }[];
  dstCount: number;
  srcCount: number;
  excCount: number;
  hasProt: boolean;
  domains: Omit<DomainTableParts, ArrayNames<DomainTableParts>>;
  patterns: PatternAutomatonParts['patterns'];
  sections: Section[];
}
type ArrayNames<T> = { [K in keyof T]: T[K] extends Int32Array | Uint8Array | null ? K : never }[keyof T];

const TRIES = ['dst4', 'dst6', 'src4', 'src6', 'exc4', 'exc6'] as const;
const DOMAIN_ARRAYS = ['slots', 'tails', 'filter', 'hitRule', 'hitKind', 'hitNext', 'hitSpec'] as const;
const TRIE_ARRAYS = ['nodes', 'listRule', 'listNext', 'jump', 'short', 'bits20'] as const;
const PATTERN_ARRAYS = ['table', 'outStart', 'outRule', 'outKind'] as const;

function sha256hex(b: Uint8Array | string): string {
  return createHash('sha256').update(b).digest('hex');
}

/** The sources hash of the header: over each source's path and sha256, in order (the policy first). */
export function sourcesHash(sources: readonly CompiledSource[]): Buffer {
  const h = createHash('sha256').update('chokepoint-compiled-sources-v1\n');
  for (const s of sources) h.update(`${s.path}\0${s.sha256}\n`);
  return h.digest();
}

/**
 * Load and compile the text policy at `policyPath`, recording every file read (the policy, then each
 * list file, with its sha256), and write the compiled file to `outPath` (through a temporary file and
 * a rename: nothing half-written). Throws PolicyError for a bad policy.
 */
export async function compilePolicyToFile(
  policyPath: string,
  outPath: string,
  opts: { now?: number } = {},
): Promise<{ matcher: Matcher; bytes: number; sources: CompiledSource[] }> {
  const { readFile } = await import('node:fs/promises');
  const text = await readFile(policyPath);
  const dir = dirname(policyPath);
  const sources: CompiledSource[] = [
    { path: basename(policyPath), sha256: sha256hex(text), bytes: text.length },
  ];
  const { policy, parsed } = await parsePolicyAndValue(text.toString('utf8'), policyPath, {
    readList: async (p) => {
      const b = await readFile(p);
      sources.push({ path: relative(dir, p), sha256: sha256hex(b), bytes: b.length });
      return b.toString('utf8');
    },
  });
  const matcher = new Matcher(policy, { now: opts.now });
  const bytes = writeCompiled(matcher, text.toString('utf8'), policyPath, sources, outPath, parsed);
  return { matcher, bytes, sources };
}

/** Serialise a matcher built from `policyText` (its indexes and rules) into `outPath`. */
export function writeCompiled(
  m: Matcher,
  policyText: string,
  policyFile: string,
  sources: CompiledSource[],
  outPath: string,
  parsed?: ParsedPolicy,
): number {
  const { header, chunks, total } = encodeCompiled(m, policyText, policyFile, sources, { parsed });
  const tmp = join(dirname(outPath), `.${basename(outPath)}.${process.pid}.tmp`);
  const fd = openSync(tmp, 'w');
  try {
    writeAll(fd, header);
    for (const c of chunks) writeAll(fd, c);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, outPath);
  return total;
}

/**
 * The same bytes as {@link writeCompiled} writes, in one SharedArrayBuffer (64-aligned sections):
 * what the box's daemon compiles once per policy version and every worker decodes with
 * {@link decodeCompiled} without copying (postMessage shares the memory).
 */
export function compiledShared(
  m: Matcher,
  policyText: string,
  policyFile: string,
  sources: CompiledSource[],
  opts: { compiledAt?: string; shared?: boolean; parsed?: ParsedPolicy } = {},
): Uint8Array {
  const { header, chunks, total } = encodeCompiled(m, policyText, policyFile, sources, opts);
  const u8 = new Uint8Array(opts.shared === false ? new ArrayBuffer(total) : new SharedArrayBuffer(total));
  u8.set(header, 0);
  let o = header.length;
  for (const c of chunks) {
    u8.set(c, o);
    o += c.length;
  }
  return u8;
}

/** The sources record of in-memory files ([path, text], the policy first), paths relative to its directory. */
export function sourcesOf(files: readonly (readonly [string, string | Uint8Array])[]): CompiledSource[] {
  const dir = dirname(files[0][0]);
  return files.map(([p, t], i) => {
    const b = typeof t === 'string' ? Buffer.from(t, 'utf8') : t;
    return { path: i === 0 ? basename(p) : relative(dir, p), sha256: sha256hex(b), bytes: b.length };
  });
}

/**
 * Compile a policy held in memory — `files` as [path, text], the policy first, each list file under
 * the path the policy's reference resolves to — into compiled bytes. With `now: 0` (every rule
 * indexed; the loader's `now` drops the expired ones) and a fixed `compiledAt`, the same files give
 * the same bytes (what the fleet controller puts in a bundle, content-addressed).
 */
export async function compileFiles(
  files: readonly [string, string][],
  opts: { now?: number; compiledAt?: string; shared?: boolean } = {},
): Promise<Uint8Array> {
  const lists = new Map(files.slice(1));
  const [path, text] = files[0];
  const { policy, parsed } = await parsePolicyAndValue(text, path, {
    readList: (p) => {
      const t = lists.get(p);
      if (t === undefined) return Promise.reject(new Error(`list file ${p} is not among the files`));
      return Promise.resolve(t);
    },
  });
  const m = new Matcher(policy, { now: opts.now });
  return compiledShared(m, text, path, sourcesOf(files), { ...opts, parsed });
}

/** The sources record of a compiled file held in `u8` (after its header checks), for comparison. */
export function compiledSources(u8: Uint8Array, path: string): CompiledSource[] {
  if (u8.length < HEADER) throw new CompiledPolicyError(path, 'shorter than the header');
  const hb = Buffer.from(u8.buffer, u8.byteOffset, HEADER);
  if (hb.toString('latin1', 0, 8) !== COMPILED_MAGIC) throw new CompiledPolicyError(path, 'bad magic');
  const metaLen = hb.readUInt32LE(16);
  if (HEADER + metaLen > u8.length) throw new CompiledPolicyError(path, 'meta runs past the end');
  try {
    const meta = JSON.parse(Buffer.from(u8.buffer, u8.byteOffset + HEADER, metaLen).toString('utf8')) as Meta;
    if (!Array.isArray(meta.sources)) throw new Error('no sources');
    return meta.sources;
  } catch (e) {
    throw new CompiledPolicyError(path, `meta: ${(e as Error).message}`, { cause: e });
  }
}

function encodeCompiled(
  m: Matcher,
  policyText: string,
  policyFile: string,
  sources: CompiledSource[],
  { compiledAt, parsed }: { compiledAt?: string; parsed?: ParsedPolicy } = {},
): { header: Buffer; chunks: Uint8Array[]; total: number } {
  const ix = m.indexes;
  const arrays: { name: string; a: Int32Array | Uint8Array }[] = [];
  const sections: Section[] = [];
  let off = 0;
  const add = (name: string, a: Int32Array | Uint8Array | null): void => {
    if (a === null) return;
    const type: ArrayKind = a instanceof Int32Array ? 'i32' : 'u8';
    sections.push({ name, type, off, len: a.length });
    arrays.push({ name, a });
    off += (a.byteLength + ALIGN - 1) & -ALIGN;
  };
  const dp = ix.domains.parts();
  for (const k of DOMAIN_ARRAYS) add(`domains.${k}`, dp[k]);
  for (const t of TRIES) {
    const tp = ix[t].parts();
    for (const k of TRIE_ARRAYS) add(`${t}.${k}`, tp[k]);
  }
  const pp = ix.patterns.parts();
  for (const k of PATTERN_ARRAYS) add(`patterns.${k}`, pp[k]);
  const lists: Meta['lists'] = [];
  for (const r of m.policy.rules)
    for (const l of r.lists) lists.push({ order: r.order, field: l.field, entries: l.entries });
  const meta: Meta = {
    format: COMPILED_VERSION,
    policyFile,
    policyText,
    ...(parsed ? { policyParsed: parsed } : {}),
    sources,
    compiledAt: compiledAt ?? new Date().toISOString(),
    orders: [...m.ruleOrders],
    lists,
    dstCount: ix.dstCount,
    srcCount: ix.srcCount,
    excCount: ix.excCount,
    hasProt: ix.hasProt,
    domains: {
      size: dp.size,
      fshift: dp.fshift,
      shift: dp.shift,
      minLabels: dp.minLabels,
      maxLabels: dp.maxLabels,
      maxLen: dp.maxLen,
    },
    patterns: pp.patterns,
    sections,
  };
  const metaBytes = Buffer.from(JSON.stringify(meta), 'utf8');
  const dataStart = (HEADER + metaBytes.length + ALIGN - 1) & -ALIGN;
  const total = dataStart + off;
  const header = Buffer.alloc(HEADER);
  header.write(COMPILED_MAGIC, 0, 'latin1');
  header.writeUInt32LE(COMPILED_VERSION, 8);
  header.writeUInt32LE(BOM, 12);
  header.writeUInt32LE(metaBytes.length, 16);
  header.writeDoubleLE(total, 24);
  sourcesHash(sources).copy(header, 32);
  const body = createHash('sha256');
  const pad = Buffer.alloc(ALIGN);
  const chunks: Uint8Array[] = [metaBytes, pad.subarray(0, dataStart - HEADER - metaBytes.length)];
  for (const { a } of arrays) {
    const b = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    chunks.push(b, pad.subarray(0, ((a.byteLength + ALIGN - 1) & -ALIGN) - a.byteLength));
  }
  for (const c of chunks) body.update(c);
  body.digest().copy(header, 64);
  return { header, chunks, total };
}

function writeAll(fd: number, b: Uint8Array): void {
  for (let o = 0; o < b.length;) o += writeSync(fd, b, o, b.length - o);
}

/** Whether `path` starts with the compiled file's magic (false when unreadable or short). */
export function isCompiledFile(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return false;
  }
  try {
    const b = Buffer.alloc(8);
    return readSync(fd, b, 0, 8, 0) === 8 && b.toString('latin1') === COMPILED_MAGIC;
  } finally {
    closeSync(fd);
  }
}

export interface LoadCompiledOptions {
  /** Rules expired at this instant (ms) are dead. Default: Date.now(). */
  now?: number;
  /** The text policy it must have been compiled from: its text and every list file are hashed and
   *  compared with the file's sources (a stale or foreign compiled file is refused). */
  policy?: string;
}

/**
 * Read a whole file into a fresh (8-aligned) ArrayBuffer. Not zero-filled first (`allocUnsafeSlow`:
 * its own buffer, offset 0): every byte is read over, and a short read is an error below.
 */
function readAligned(path: string): Uint8Array {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size > MAX_FILE)
      throw new CompiledPolicyError(path, `file of ${size} bytes is larger than any compiled policy`);
    const b = Buffer.allocUnsafeSlow(size);
    const u8 = new Uint8Array(b.buffer, b.byteOffset, size);
    let o = 0;
    while (o < size) {
      const n = readSync(fd, u8, o, size - o, o);
      if (n === 0) break;
      o += n;
    }
    // the file shrank under us: what was not read is not zero but garbage, so refuse it
    if (o < size) throw new CompiledPolicyError(path, `truncated while reading: ${o} of ${size} bytes`);
    return u8;
  } finally {
    closeSync(fd);
  }
}

/** Load a compiled registry file into a matcher (see the module doc for what is checked). */
export async function loadCompiled(path: string, opts: LoadCompiledOptions = {}): Promise<Matcher> {
  let u8: Uint8Array;
  try {
    u8 = readAligned(path);
  } catch (e) {
    if (e instanceof CompiledPolicyError) throw e;
    throw new CompiledPolicyError(
      path,
      `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      {
        cause: e,
      },
    );
  }
  return decodeCompiled(u8, path, opts);
}

/** Decode a compiled file held in `u8` (its own buffer, 8-aligned); `path` names it in errors. */
export async function decodeCompiled(
  u8: Uint8Array,
  path: string,
  opts: LoadCompiledOptions = {},
): Promise<Matcher> {
  const bad = (msg: string, cause?: unknown): CompiledPolicyError =>
    new CompiledPolicyError(path, msg, cause === undefined ? undefined : { cause });
  if (u8.byteOffset % 8 !== 0) throw bad('buffer not 8-byte aligned');
  if (u8.length < HEADER) throw bad(`not a compiled policy: ${u8.length} bytes, shorter than the header`);
  const hb = Buffer.from(u8.buffer, u8.byteOffset, HEADER);
  if (hb.toString('latin1', 0, 8) !== COMPILED_MAGIC)
    throw bad('not a compiled policy (bad magic; make one with `chokepoint registry compile POLICY`)');
  const version = hb.readUInt32LE(8);
  if (version !== COMPILED_VERSION)
    throw bad(
      `compiled format version ${version}, this build reads version ${COMPILED_VERSION}: compile it again`,
    );
  if (hb.readUInt32LE(12) !== BOM)
    throw bad('byte order mark does not match (made on a big-endian machine?)');
  if (hb.readUInt32LE(20) !== 0 || hb.subarray(96, HEADER).some((b) => b !== 0))
    throw bad('reserved header bytes are not zero (a newer or corrupted file)');
  const total = hb.readDoubleLE(24);
  if (total !== u8.length)
    throw bad(`truncated or extended: header says ${total} bytes, file has ${u8.length}`);
  const metaLen = hb.readUInt32LE(16);
  const dataStart = (HEADER + metaLen + ALIGN - 1) & -ALIGN;
  if (dataStart > u8.length) throw bad(`meta of ${metaLen} bytes runs past the end of the file`);
  const digest = createHash('sha256').update(u8.subarray(HEADER)).digest();
  if (!digest.equals(hb.subarray(64, 96))) throw bad('content hash mismatch: the file is corrupted');
  let meta: Meta;
  try {
    meta = JSON.parse(Buffer.from(u8.buffer, u8.byteOffset + HEADER, metaLen).toString('utf8')) as Meta;
  } catch (e) {
    throw bad(`meta is not JSON: ${(e as Error).message}`, e);
  }
  if (typeof meta !== 'object' || meta === null || meta.format !== COMPILED_VERSION)
    throw bad('meta does not describe this format version');
  if (!Array.isArray(meta.sources) || meta.sources.length === 0) throw bad('meta lists no sources');
  if (!sourcesHash(meta.sources).equals(hb.subarray(32, 64)))
    throw bad('sources hash does not match the meta');
  if (opts.policy !== undefined) checkSources(path, meta.sources, opts.policy);
  const dataLen = u8.length - dataStart;
  const views = new Map<string, Int32Array | Uint8Array>();
  if (!Array.isArray(meta.sections)) throw bad('meta has no section table');
  for (const s of meta.sections) {
    const size = s?.type === 'i32' ? 4 : s?.type === 'u8' ? 1 : 0;
    if (size === 0 || typeof s.name !== 'string') throw bad('bad section entry');
    if (!Number.isInteger(s.off) || !Number.isInteger(s.len) || s.off < 0 || s.len < 0 || s.off % 8 !== 0)
      throw bad(`section ${s.name}: bad offset or length`);
    if (s.off + s.len * size > dataLen) throw bad(`section ${s.name} runs past the end of the file`);
    if (views.has(s.name)) throw bad(`section ${s.name} twice`);
    const at = u8.byteOffset + dataStart + s.off;
    views.set(
      s.name,
      size === 4 ? new Int32Array(u8.buffer, at, s.len) : new Uint8Array(u8.buffer, at, s.len),
    );
  }
  const i32 = (name: string, optional = false): Int32Array => {
    const v = views.get(name);
    if (v === undefined && optional) return null as unknown as Int32Array;
    if (!(v instanceof Int32Array)) throw bad(`section ${name} missing or not int32`);
    return v;
  };
  const u8s = (name: string, optional = false): Uint8Array => {
    const v = views.get(name);
    if (v === undefined && optional) return null as unknown as Uint8Array;
    if (!(v instanceof Uint8Array)) throw bad(`section ${name} missing or not bytes`);
    return v;
  };
  // the policy text goes through the loader (every rule value checked again); lists come back empty,
  // the indexes hold their entries
  let policy: Policy;
  try {
    if (typeof meta.policyText !== 'string' || typeof meta.policyFile !== 'string')
      throw new Error('no policy text');
    policy = await parsePolicy(meta.policyText, meta.policyFile, {
      readList: () => Promise.resolve(''),
      parsed: isParsedPolicy(meta.policyParsed) ? meta.policyParsed : undefined,
    });
  } catch (e) {
    throw bad(`the policy inside is invalid: ${(e as Error).message}`, e);
  }
  try {
    if (!Array.isArray(meta.lists)) throw new Error('no list table');
    for (const l of meta.lists) {
      const e = policy.rules[l.order]?.lists.find((x) => x.field === l.field);
      if (e === undefined || !Number.isInteger(l.entries))
        throw new Error(`list ${String(l.field)} of rule #${l.order}`);
      e.entries = l.entries;
    }
    if (!Array.isArray(meta.orders) || !meta.orders.every((o) => Number.isInteger(o)))
      throw new Error('no rule table');
    for (let i = 1; i < meta.orders.length; i++)
      if (meta.orders[i] <= meta.orders[i - 1]) throw new Error('rule table out of order');
    const P = meta.orders.length; // the pseudo-rule of protected entries
    const trie = (t: string, jump: boolean): PrefixTrie => {
      const parts: PrefixTrieParts = {
        nodes: i32(`${t}.nodes`),
        listRule: i32(`${t}.listRule`),
        listNext: i32(`${t}.listNext`),
        jump: i32(`${t}.jump`, true),
        short: u8s(`${t}.short`, true),
        bits20: i32(`${t}.bits20`, true),
      };
      if (!jump && (parts.jump !== null || parts.bits20 !== null)) throw new Error(`${t} has a jump table`);
      return PrefixTrie.fromParts(parts, P);
    };
    const d = meta.domains;
    const ints = (...v: unknown[]): boolean => v.every((x) => Number.isInteger(x));
    if (
      typeof d !== 'object' ||
      d === null ||
      !ints(d.size, d.fshift, d.shift, d.minLabels, d.maxLabels, d.maxLen)
    )
      throw new Error('domain table figures');
    if (!ints(meta.dstCount, meta.srcCount, meta.excCount) || typeof meta.hasProt !== 'boolean')
      throw new Error('index counts');
    const indexes: MatcherIndexes = {
      domains: DomainTable.fromParts(
        {
          size: d.size,
          fshift: d.fshift,
          shift: d.shift,
          minLabels: d.minLabels,
          maxLabels: d.maxLabels,
          maxLen: d.maxLen,
          slots: i32('domains.slots'),
          tails: u8s('domains.tails'),
          filter: i32('domains.filter'),
          hitRule: i32('domains.hitRule'),
          hitKind: u8s('domains.hitKind'),
          hitNext: i32('domains.hitNext'),
          hitSpec: i32('domains.hitSpec'),
        },
        P,
      ),
      patterns: PatternAutomaton.fromParts(
        {
          table: i32('patterns.table'),
          outStart: i32('patterns.outStart'),
          outRule: i32('patterns.outRule'),
          outKind: u8s('patterns.outKind'),
          patterns: meta.patterns,
        },
        P,
      ),
      dst4: trie('dst4', true),
      dst6: trie('dst6', false),
      src4: trie('src4', true),
      src6: trie('src6', false),
      exc4: trie('exc4', true),
      exc6: trie('exc6', false),
      dstCount: meta.dstCount,
      srcCount: meta.srcCount,
      excCount: meta.excCount,
      hasProt: meta.hasProt,
    };
    return new Matcher(policy, { now: opts.now }, { indexes, orders: meta.orders });
  } catch (e) {
    if (e instanceof CompiledPolicyError) throw e;
    throw bad(`corrupt: ${(e as Error).message}`, e);
  }
}

function checkSources(path: string, sources: readonly CompiledSource[], policyPath: string): void {
  const dir = dirname(policyPath);
  for (let i = 0; i < sources.length; i++) {
    const s = sources[i];
    const p = i === 0 ? policyPath : isAbsolute(s.path) ? s.path : join(dir, s.path);
    let b: Buffer;
    try {
      b = readFileSync(p);
    } catch (e) {
      throw new CompiledPolicyError(
        path,
        `stale: source ${p} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
      );
    }
    const h = sha256hex(b);
    if (h !== s.sha256)
      throw new CompiledPolicyError(
        path,
        i === 0
          ? `compiled from a different policy text than ${p} (sha256 ${s.sha256.slice(0, 12)}…, the file is ${h.slice(0, 12)}…): run \`chokepoint registry compile ${p}\` again`
          : `stale: list file ${p} changed since it was compiled (sha256 ${s.sha256.slice(0, 12)}…, now ${h.slice(0, 12)}…): run \`chokepoint registry compile\` again`,
      );
  }
}
