/**
 * @module output/json-bytes
 * A JSON text built as UTF-8 bytes in one reused, growing buffer: the writer of the EVE lines
 * (output/eve `writeFlowEve`) appends keys, strings and numbers here instead of concatenating a
 * string per record (~60 pieces, ~4 KB of garbage each) that is then encoded again on output.
 * Strings are written as `JSON.stringify` would: printable ASCII without `"` or `\` is copied byte
 * for byte, anything else goes through `JSON.stringify` and is encoded as UTF-8; integers as their
 * decimal digits (as `String(n)` for safe integers), other numbers through `String`, non-finite
 * ones as `null`.
 */
export class JsonBytes {
  buf = Buffer.allocUnsafe(4096);
  pos = 0;

  /** Start a new text (the buffer is kept). */
  reset(): void {
    this.pos = 0;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const b = Buffer.allocUnsafe(size);
    this.buf.copy(b, 0, 0, this.pos);
    this.buf = b;
  }

  /** Raw ASCII text (keys and punctuation written by the caller: nothing is escaped). */
  raw(s: string): void {
    const n = s.length;
    this.ensure(n);
    const b = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) b[p++] = s.charCodeAt(i);
    this.pos = p;
  }

  /** A JSON string (or `null`). */
  str(v: string | null): void {
    if (v === null) {
      this.raw('null');
      return;
    }
    const n = v.length;
    this.ensure(n + 2);
    const b = this.buf;
    const start = this.pos;
    let p = start;
    b[p++] = 0x22;
    for (let i = 0; i < n; i++) {
      const c = v.charCodeAt(i);
      if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) {
        // needs escapes or is not ASCII: JSON.stringify's text, as UTF-8 (≤ 3 bytes per code unit)
        const j = JSON.stringify(v);
        this.pos = start;
        this.ensure(3 * j.length);
        this.pos = start + this.buf.write(j, start, 'utf8');
        return;
      }
      b[p++] = c;
    }
    b[p++] = 0x22;
    this.pos = p;
  }

  /** A JSON array of strings. */
  strs(a: readonly string[]): void {
    this.raw('[');
    for (let i = 0; i < a.length; i++) {
      if (i > 0) this.raw(',');
      this.str(a[i]);
    }
    this.raw(']');
  }

  /** A JSON number (`null` when not finite, as JSON.stringify). */
  num(v: number): void {
    if (v >= 0 && v <= 0x7fffffff && (v | 0) === v) {
      this.small(v);
      return;
    }
    if (!Number.isSafeInteger(v) || v < 0) {
      this.raw(Number.isFinite(v) ? String(v) : 'null');
      return;
    }
    // 2^31 ≤ v < 2^53: the digits above the last nine, then those nine (int32 arithmetic only:
    // `%` and `Math.floor` on doubles cost ~10× as much per digit)
    const hi = Math.floor(v / 1e9);
    this.small(hi);
    let lo = v - hi * 1e9;
    this.ensure(9);
    const b = this.buf;
    let p = this.pos + 9;
    this.pos = p;
    for (let i = 0; i < 9; i++) {
      const q = (lo / 10) | 0;
      b[--p] = 48 + lo - q * 10;
      lo = q;
    }
  }

  /** The decimal digits of 0 ≤ v < 2^31. */
  private small(v: number): void {
    let digits = 1;
    for (let x = v; x >= 10; x = (x / 10) | 0) digits++;
    this.ensure(digits);
    const b = this.buf;
    let p = this.pos + digits;
    this.pos = p;
    let x = v;
    do {
      const q = (x / 10) | 0;
      b[--p] = 48 + x - q * 10;
      x = q;
    } while (x > 0);
  }

  /** `key` (raw text, e.g. `,"sni":`) then a string. */
  strAt(key: string, v: string | null): void {
    this.raw(key);
    this.str(v);
  }

  /** `key` (raw text) then a number. */
  numAt(key: string, v: number): void {
    this.raw(key);
    this.num(v);
  }

  /** `key` (raw text) then a list of strings. */
  strsAt(key: string, a: readonly string[]): void {
    this.raw(key);
    this.strs(a);
  }

  /** `true` / `false`. */
  bool(v: boolean): void {
    this.raw(v ? 'true' : 'false');
  }

  /** A whole text (any string, as UTF-8) and a newline: a line written by other means. */
  line(text: string): void {
    this.ensure(3 * text.length + 1);
    this.pos += this.buf.write(text, this.pos, 'utf8');
    this.buf[this.pos++] = 0x0a;
  }

  /** A copy of the bytes so far, in an ArrayBuffer of their own (to transfer to another thread). */
  copy(): Uint8Array<ArrayBuffer> {
    const out = new Uint8Array(this.pos);
    out.set(this.buf.subarray(0, this.pos));
    return out;
  }

  /** The text so far, decoded. */
  text(): string {
    return this.buf.toString('utf8', 0, this.pos);
  }
}
