/**
 * @module enforce/policer
 * Token-bucket policer (drop, never queue), one bucket per connection and direction: a packet that
 * finds fewer tokens than its length is dropped, as the 2021 throttler did (brief §5: a ~16 KB bucket
 * drains in ~100 ms, then excess packets drop until tokens refill). Rates in bit/s, buckets in bytes,
 * time in ms. Two directions of one connection live in one object; no allocation per packet.
 */

export class DualPolicer {
  /** Bytes per ms. */
  private readonly rate: number;
  private readonly burst: number;
  private tokUp: number;
  private tokDown: number;
  private lastUp: number;
  private lastDown: number;
  passed = 0;
  dropped = 0;

  constructor(rateBps: number, burstBytes: number, nowMs: number) {
    this.rate = rateBps / 8 / 1000;
    this.burst = Math.max(1, burstBytes);
    this.tokUp = this.burst;
    this.tokDown = this.burst;
    this.lastUp = nowMs;
    this.lastDown = nowMs;
  }

  /** True when a packet of `len` bytes (IP length) in the given direction conforms (and is charged). */
  allow(toServer: boolean, len: number, nowMs: number): boolean {
    let tok: number;
    if (toServer) {
      tok = Math.min(this.burst, this.tokUp + (nowMs - this.lastUp) * this.rate);
      this.lastUp = nowMs;
    } else {
      tok = Math.min(this.burst, this.tokDown + (nowMs - this.lastDown) * this.rate);
      this.lastDown = nowMs;
    }
    const ok = tok >= len;
    if (ok) tok -= len;
    if (toServer) this.tokUp = tok;
    else this.tokDown = tok;
    if (ok) this.passed++;
    else this.dropped++;
    return ok;
  }
}
