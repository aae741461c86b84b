/**
 * @module policy/names
 * Domain-name normalisation and validation for rule files and list files.
 *
 * Names are compared in ASCII lowercase (IDNs in punycode A-label form). Names written in a rule file
 * as U-labels (`пример.рф`) are converted with `domainToASCII` (`xn--e1afmkfd.xn--p1ai`). One trailing
 * dot is removed from rule names (`example.com.` = `example.com`); what a trailing dot on the *traffic*
 * side does is decided by the policy's `names.trailing_dot` (see compile).
 */
import { domainToASCII } from 'node:url';

const MAX_NAME = 253;
const MAX_LABEL = 63;

/** Lowercase ASCII char code (only A-Z are changed). */
export function lowerCode(c: number): number {
  return c >= 65 && c <= 90 ? c + 32 : c;
}

function isNameChar(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 45 || c === 95;
}

/**
 * Normalise a domain name from a rule or list file. Returns the canonical form, or a string starting
 * with '!' holding the reason it is invalid (no exceptions: called a million times by list loading).
 */
export function normalizeName(raw: string): string {
  let s = raw.trim();
  if (s.length === 0) return '!empty name';
  if (s.endsWith('.')) s = s.slice(0, -1);
  if (s.includes('*'))
    return `!wildcard '*' in '${raw}': use 'suffix' (name and all subdomains) or 'subdomains' (strictly below) instead`;
  let ascii = true;
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) > 127) {
      ascii = false;
      break;
    }
  }
  if (!ascii) {
    const a = domainToASCII(s);
    if (!a) return `!'${raw}' is not a valid internationalised domain name`;
    s = a;
  }
  s = s.toLowerCase();
  if (s.length > MAX_NAME) return `!name longer than ${MAX_NAME} characters`;
  let labelLen = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (labelLen === 0) return `!empty label in '${raw}'`;
      labelLen = 0;
      continue;
    }
    if (!isNameChar(c))
      return `!invalid character '${s[i]}' in '${raw}' (letters, digits, '-', '_' and '.' only)`;
    if (++labelLen > MAX_LABEL) return `!label longer than ${MAX_LABEL} characters in '${raw}'`;
  }
  if (labelLen === 0) return `!empty label in '${raw}'`;
  return s;
}

/**
 * Normalise a substring / endswith pattern (emulation match types): lowercase, U-labels converted,
 * but dots kept exactly as written (a leading or trailing dot is significant).
 */
export function normalizePattern(raw: string): string {
  if (raw.length === 0) return '!empty pattern';
  if (raw.includes('*')) return `!wildcard '*' in pattern '${raw}': substring/endswith patterns are literal`;
  let s = raw;
  if (hasNonAscii(s)) {
    const parts = s.split('.');
    for (let i = 0; i < parts.length; i++) {
      if (hasNonAscii(parts[i])) {
        const a = domainToASCII(parts[i]);
        if (!a) return `!'${raw}' is not a valid internationalised pattern`;
        parts[i] = a;
      }
    }
    s = parts.join('.');
  }
  s = s.toLowerCase();
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!isNameChar(c) && c !== 46) return `!invalid character '${s[i]}' in pattern '${raw}'`;
  }
  return s;
}

function hasNonAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 127) return true;
  return false;
}

/** Number of labels in a normalised name. */
export function labelCount(name: string): number {
  let n = 1;
  for (let i = 0; i < name.length; i++) if (name.charCodeAt(i) === 46) n++;
  return n;
}

/** `name` equals `parent` or lies below it on a label boundary. */
export function isWithin(name: string, parent: string): boolean {
  return (
    name === parent ||
    (name.length > parent.length &&
      name.endsWith(parent) &&
      name.charCodeAt(name.length - parent.length - 1) === 46)
  );
}

/** `name` lies strictly below `parent` on a label boundary. */
export function isStrictlyWithin(name: string, parent: string): boolean {
  return (
    name.length > parent.length &&
    name.endsWith(parent) &&
    name.charCodeAt(name.length - parent.length - 1) === 46
  );
}
