/**
 * @module dissect/types
 * Results of the application-layer dissectors. Dissectors are pure functions over byte views:
 * they never throw across the engine; truncation means "need more bytes", anything else that
 * does not fit the protocol is reported as an anomaly code.
 */

/** A parsed TLS ClientHello (the handshake message body, independent of transport). */
export interface ClientHello {
  /** legacy_version from the ClientHello body (e.g. 0x0303). */
  legacyVersion: number;
  sni: string | null;
  alpn: string[];
  /** supported_versions extension values (GREASE removed), or [] if absent. */
  supportedVersions: number[];
  /**
   * The three lists an attacker can make long (thousands of values) are typed arrays: one allocation
   * each, no per-value boxing, and the JA4 walks over them stay monomorphic.
   */
  cipherSuites: Uint16Array;
  /** Extension types in wire order (GREASE included, JA4 filters). */
  extensions: Uint16Array;
  signatureAlgorithms: Uint16Array;
  ech: boolean;
  ja4: string;
  /**
   * Non-fatal oddities found while parsing (stable codes, e.g. `tls_sni_bad_chars`,
   * `tls_duplicate_extension`). Set by parseClientHelloBody; optional so other producers may omit it.
   */
  anomalies?: string[];
}

/** Outcome of trying to parse a client byte stream prefix. */
export type ParseStatus =
  { status: 'need-more' } | { status: 'not-mine' } | { status: 'error'; anomaly: string };
