/**
 * @module dissect/quic-frames.test
 * The QUIC Initial frame walk reads through the one bounded cursor (util/bytes ByteReader): a payload
 * cut at any offset is an anomaly (`quic_bad_frame`) when the cut falls inside a frame and nothing when
 * it falls on a frame boundary — never a throw, and never a half-taken frame (no CRYPTO bytes from a
 * frame whose data was cut). Frames are written by hand (RFC 9000 §19 encodings), not by the parser.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { QuicInitialAssembler } from './quic.js';
import { ByteReader } from '../util/bytes.js';
import { TruncatedError } from '../util/errors.js';

interface Walk {
  takeFrames(f: Uint8Array, cryptoType: number): void;
  anomalies: string[];
  held: number;
}

// ACK: type 0x02, largest 0x4123 (2-byte varint), delay 0x05, range count 1, first range 0x00,
// one range: gap 0x01, length 0x02
const ACK = [0x02, 0x41, 0x23, 0x05, 0x01, 0x00, 0x01, 0x02];
// CRYPTO: type 0x06, offset 0, length 0x4010 (2-byte varint) = 16 bytes of data
const CRYPTO = [0x06, 0x00, 0x40, 0x10, ...Array.from({ length: 16 }, (_, i) => i + 1)];
// CONNECTION_CLOSE: type 0x1c, error 0x0a, frame type 0x00, reason length 3, "bye"
const CLOSE = [0x1c, 0x0a, 0x00, 0x03, 0x62, 0x79, 0x65];

test('a frame payload cut at every offset: anomaly inside a frame, never a throw, never half-taken', () => {
  const frames = [ACK, [0x01], CRYPTO, [0x00, 0x00], CLOSE];
  const payload = Uint8Array.from(frames.flat());
  const bounds = new Set<number>([0]);
  let o = 0;
  for (const f of frames) bounds.add((o += f.length));
  const cryptoEnd = ACK.length + 1 + CRYPTO.length;
  for (let cut = 0; cut <= payload.length; cut++) {
    const a = new QuicInitialAssembler() as unknown as Walk;
    assert.doesNotThrow(() => a.takeFrames(payload.slice(0, cut), 0x06), `cut ${cut}`);
    const bad = a.anomalies.includes('quic_bad_frame');
    // PADDING is one byte a frame: a cut between the two padding bytes is a boundary too
    const boundary = bounds.has(cut) || cut === cryptoEnd + 1;
    assert.equal(bad, !boundary, `cut ${cut}: ${a.anomalies.join()}`);
    assert.equal(a.held > 0, cut >= cryptoEnd, `cut ${cut}: CRYPTO taken only when whole`);
  }
});

test('fast-check: random payloads never throw out of the frame walk', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (p) => {
      const a = new QuicInitialAssembler() as unknown as Walk;
      a.takeFrames(p, 0x06);
      return true;
    }),
    { numRuns: 2000 },
  );
});

test('fast-check: a failed ByteReader read leaves the cursor where it was; reset reuses the reader', () => {
  const r = new ByteReader(new Uint8Array(0));
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 40 }),
      fc.array(fc.constantFrom('u8', 'u16', 'u24', 'u32', 'varint', 'skip3', 'bytes5'), { maxLength: 30 }),
      (buf, ops) => {
        r.reset(buf, 0, buf.length);
        for (const op of ops) {
          const before = r.pos;
          try {
            if (op === 'skip3') r.skip(3);
            else if (op === 'bytes5') r.bytes(5);
            else r[op as 'u8']();
          } catch (e) {
            if (!(e instanceof TruncatedError)) throw e;
            if (r.pos !== before) return false;
          }
          if (r.pos > buf.length) return false;
        }
        return true;
      },
    ),
    { numRuns: 2000 },
  );
});
