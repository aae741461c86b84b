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
  cipherSuites: number[];
  /** Extension types in wire order (GREASE included, JA4 filters). */
  extensions: number[];
  signatureAlgorithms: number[];
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
