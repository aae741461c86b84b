/**
 * @module policy/yamlpos
 * Parse YAML keeping source positions, and map a path in the parsed value (e.g.
 * `['rules', 3, 'match', 'host', 'exact', 2]`) back to `line:column` of the value or of its key.
 */
import { LineCounter, parseDocument, isMap, isNode, type Document, type Node } from 'yaml';
import { PolicyError } from './errors.js';
import type { Path, PolicySource } from './source.js';

export class YamlSource implements PolicySource {
  readonly doc: Document;
  readonly lc = new LineCounter();
  constructor(
    readonly file: string,
    text: string,
  ) {
    this.doc = parseDocument(text, {
      lineCounter: this.lc,
      prettyErrors: false,
      uniqueKeys: true,
      strict: true,
    });
    const err = this.doc.errors[0];
    if (err) {
      const { line, col } = this.lc.linePos(err.pos[0]);
      throw new PolicyError(
        file,
        line,
        col,
        `YAML: ${err.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')}`,
      );
    }
  }

  toJS(): unknown {
    return this.doc.toJS({ maxAliasCount: 100 });
  }

  private offsetOf(path: Path, key: boolean): number {
    const doc = this.doc;
    // walk up until a node exists
    for (let n = path.length; n >= 0; n--) {
      const sub = path.slice(0, n);
      if (key && n === path.length && n > 0) {
        const parent = sub.length === 1 ? doc.contents : doc.getIn(sub.slice(0, -1), true);
        if (isMap(parent)) {
          const last = sub[sub.length - 1];
          const pair = parent.items.find((p) => {
            const k = p.key as unknown;
            return isNode(k) ? (k as unknown as { value?: unknown }).value === last : k === last;
          });
          if (pair && isNode(pair.key) && (pair.key as Node).range) return (pair.key as Node).range![0];
        }
      }
      const node = n === 0 ? doc.contents : doc.getIn(sub, true);
      if (isNode(node) && (node as Node).range) return (node as Node).range![0];
    }
    return 0;
  }

  /** Position of the value at `path` (or of its key with `key`), as [line, column], 1-based. */
  pos(path: Path, key = false): [number, number] {
    const { line, col } = this.lc.linePos(this.offsetOf(path, key));
    return [line, col];
  }

  error(path: Path, message: string, key = false): PolicyError {
    const [line, col] = this.pos(path, key);
    return new PolicyError(this.file, line, col, message);
  }
}
