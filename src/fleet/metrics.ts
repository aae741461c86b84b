/**
 * @module fleet/metrics
 * The fleet member's Prometheus metrics, registered on the daemon's registry (so they are on its
 * /metrics). Refusals carry a low-cardinality `reason` (one of {@link REFUSAL_REASONS}).
 */
import client from 'prom-client';

export const REFUSAL_REASONS = [
  'signature',
  'trust',
  'key_revoked',
  'key_unknown',
  'expired',
  'rollback',
  'format',
  'file',
  'policy',
  'apply',
] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

/** The `reason` label of a refusal, from the error's stable code. */
export function reasonOf(code: string): RefusalReason {
  switch (code) {
    case 'ERR_BUNDLE_SIGNATURE':
      return 'signature';
    case 'ERR_BUNDLE_TRUST':
    case 'ERR_BUNDLE_TRUST_EXPIRED':
      return 'trust';
    case 'ERR_BUNDLE_KEY_REVOKED':
      return 'key_revoked';
    case 'ERR_BUNDLE_KEY_UNKNOWN':
      return 'key_unknown';
    case 'ERR_BUNDLE_EXPIRED':
      return 'expired';
    case 'ERR_BUNDLE_ROLLBACK':
      return 'rollback';
    case 'ERR_BUNDLE_FILE':
      return 'file';
    case 'ERR_BUNDLE_POLICY':
      return 'policy';
    case 'ERR_BUNDLE_APPLY':
      return 'apply';
    default:
      return 'format';
  }
}

export class FleetMetrics {
  readonly version: client.Gauge;
  readonly activated: client.Counter;
  readonly refused: client.Counter<'reason'>;
  readonly downloadErrors: client.Counter;
  readonly expired: client.Gauge;
  readonly failedOpen: client.Gauge;
  readonly lastActivation: client.Gauge;
  readonly reports: client.Counter<'result'>;

  constructor(reg: client.Registry) {
    const registers = [reg];
    this.version = new client.Gauge({
      name: 'chokepoint_fleet_bundle_version',
      help: 'bundle version the box enforces (0: none)',
      registers,
    });
    this.activated = new client.Counter({
      name: 'chokepoint_fleet_bundles_activated_total',
      help: 'bundles verified and active on every queue',
      registers,
    });
    this.refused = new client.Counter({
      name: 'chokepoint_fleet_bundles_refused_total',
      help: 'bundles refused (the box stayed on its version), by reason',
      labelNames: ['reason'],
      registers,
    });
    for (const r of REFUSAL_REASONS) this.refused.inc({ reason: r }, 0);
    this.downloadErrors = new client.Counter({
      name: 'chokepoint_fleet_download_errors_total',
      help: 'failed requests to the controller (unreachable, HTTP errors)',
      registers,
    });
    this.expired = new client.Gauge({
      name: 'chokepoint_fleet_bundle_expired',
      help: '1 while the active bundle is past its expiry (alarm: the controller has not re-signed it)',
      registers,
    });
    this.failedOpen = new client.Gauge({
      name: 'chokepoint_fleet_failed_open',
      help: '1 while the box allows everything because its bundle expired (--on-expired fail-open)',
      registers,
    });
    this.lastActivation = new client.Gauge({
      name: 'chokepoint_fleet_last_activation_timestamp_seconds',
      help: 'when the active bundle became active on every queue',
      registers,
    });
    this.reports = new client.Counter({
      name: 'chokepoint_fleet_status_reports_total',
      help: 'status reports sent to the controller, by result',
      labelNames: ['result'],
      registers,
    });
  }
}
