/**
 * @module policy/units
 * Rates and sizes in rule files. Rates are bits per second with decimal prefixes (`128kbit`,
 * `1.5mbit`, `150 kbit/s`, or a bare number of bit/s). Sizes are bytes: `16KB` = 16,000, `16KiB` =
 * 16,384 (`B`, `KB`, `KiB`, `MB`, `MiB`, or a bare number of bytes). `kbps`-style units are refused as
 * ambiguous (tc reads them as kilobytes per second).
 */

const RATE_UNITS: Record<string, number> = { bit: 1, kbit: 1e3, mbit: 1e6, gbit: 1e9 };
const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  kib: 1024,
  mb: 1e6,
  mib: 1024 * 1024,
  gb: 1e9,
  gib: 1024 ** 3,
};

/** Parse a rate to bit/s; returns a string starting with '!' with the reason when invalid. */
export function parseRate(v: unknown): number | string {
  if (typeof v === 'number')
    return Number.isFinite(v) && v > 0 ? Math.round(v) : '!rate must be a positive number of bit/s';
  if (typeof v !== 'string') return '!rate must be a string like 128kbit or a number of bit/s';
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]+)?(\/s)?\s*$/i.exec(v);
  if (!m) return `!invalid rate '${v}' (examples: 128kbit, 1.5mbit, 150kbit/s)`;
  const unit = (m[2] ?? 'bit').toLowerCase();
  if (/^[kmg]?bps$/.test(unit) || unit === 'kb' || unit === 'mb')
    return `!ambiguous rate unit '${m[2]}' in '${v}': write kbit/mbit/gbit (bits per second)`;
  const mult = RATE_UNITS[unit];
  if (mult === undefined) return `!unknown rate unit '${m[2]}' in '${v}' (bit, kbit, mbit, gbit)`;
  const r = Math.round(Number(m[1]) * mult);
  return r > 0 ? r : `!rate must be positive: '${v}'`;
}

/** Parse a size to bytes; returns a string starting with '!' with the reason when invalid. */
export function parseSize(v: unknown): number | string {
  if (typeof v === 'number')
    return Number.isInteger(v) && v > 0 ? v : '!size must be a positive integer number of bytes';
  if (typeof v !== 'string') return '!size must be a string like 16KB or a number of bytes';
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]+)?\s*$/i.exec(v);
  if (!m) return `!invalid size '${v}' (examples: 16KB, 16KiB, 1500B)`;
  const unit = (m[2] ?? 'b').toLowerCase();
  const mult = SIZE_UNITS[unit];
  if (mult === undefined) return `!unknown size unit '${m[2]}' in '${v}' (B, KB, KiB, MB, MiB)`;
  const r = Math.round(Number(m[1]) * mult);
  return r > 0 ? r : `!size must be positive: '${v}'`;
}
