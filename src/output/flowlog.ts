/**
 * @module output/flowlog
 * Flow logs as input: a file of EVE JSON lines (ours, from analyze / simulate / enforce, this version's
 * shape or version 1) read back into FlowRecords through output/eve.ts, so simulate and lint can work
 * from logs instead of captures. Streams in 1 MiB chunks (memory bounded by the longest line, itself
 * bounded by MAX_EVE_LINE); events that are not flow records of ours (Suricata's own, our summary
 * lines) are skipped and counted; a malformed line rejects the file naming file:line and the field.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { basename } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { EveReadError, MAX_EVE_LINE, fromEveLine } from './eve.js';
import type { FlowRecord } from '../record/record.js';

/** Whether `path` looks like a flow log: its first non-blank byte is '{'. */
export function isFlowLog(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(512);
    const n = readSync(fd, b, 0, b.length, 0);
    for (let i = 0; i < n; i++) {
      const c = b[i];
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) continue;
      return c === 0x7b;
    }
    return false;
  } finally {
    closeSync(fd);
  }
}

export interface FlowLogResult {
  records: number;
  /** Lines that were valid JSON but not a flow record of ours. */
  skipped: number;
}

/** Read every record of a flow log, in order. Throws EveReadError (file:line: field: …). */
export function readFlowLog(path: string, onRecord: (r: FlowRecord) => void): FlowLogResult {
  const name = basename(path);
  const fd = openSync(path, 'r');
  const res: FlowLogResult = { records: 0, skipped: 0 };
  try {
    const chunk = Buffer.alloc(1 << 20);
    const dec = new StringDecoder('utf8'); // a character split across chunks stays whole
    let carry = '';
    let lineNo = 0;
    const line = (text: string): void => {
      lineNo++;
      if (text.trim() === '') return;
      const r = fromEveLine(text, `${name}:${lineNo}`);
      if (r) {
        res.records++;
        onRecord(r);
      } else res.skipped++;
    };
    for (;;) {
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      const text = carry + dec.write(chunk.subarray(0, n));
      let start = 0;
      for (let nl = text.indexOf('\n', start); nl >= 0; nl = text.indexOf('\n', start)) {
        line(text.slice(start, nl));
        start = nl + 1;
      }
      carry = text.slice(start);
      if (carry.length > MAX_EVE_LINE)
        throw new EveReadError(`${name}:${lineNo + 1}`, '(line)', `longer than ${MAX_EVE_LINE} characters`);
    }
    carry += dec.end();
    if (carry) line(carry);
    return res;
  } finally {
    closeSync(fd);
  }
}
