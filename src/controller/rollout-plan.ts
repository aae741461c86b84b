/**
 * @module controller/rollout-plan
 * The rollout plan: an ordered list of stages (shadow on every box → a canary group by label
 * selector → a share of the fleet → all), each with a bake time and an analysis (sample interval,
 * failure threshold = consecutive failing samples, metric limits). YAML or JSON, validated with ajv;
 * the first error names the field (`stages[1].bake_s: …`) and the whole plan is refused. Lab defaults:
 * interval 5 s, threshold 2.
 */
import AjvModule from 'ajv';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { ApiError } from './errors.js';

export interface Limits {
  /** max increase of the share of new flows blocked or throttled, in percentage points */
  blocked_share_pp: number;
  /** max flows newly given a non-allow action through substring/endswith patterns (per sample) */
  pattern_flows: number;
  /** max new flows where a protected name met a non-allow rule */
  protected_hits: number;
  /** max new fail-open events */
  fail_open: number;
  /** max new worker restarts */
  worker_restarts: number;
}

export interface Stage {
  name: string;
  /** shadow: the version is evaluated beside the active one, not enforced */
  mode: 'shadow' | 'enforce';
  /** which nodes: a label selector (all must match), a percentage of the fleet, or every node */
  select: { labels: Record<string, string> } | { percent: number } | 'all';
  bake_s: number;
  analysis: { interval_s: number; threshold: number; limits: Limits };
}

export interface Plan {
  stages: Stage[];
}

export const DEFAULT_LIMITS: Limits = {
  blocked_share_pp: 5,
  pattern_flows: 0,
  protected_hits: 0,
  fail_open: 0,
  worker_restarts: 0,
};
export const DEFAULT_ANALYSIS = { interval_s: 5, threshold: 2 } as const;

const LIMITS_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    blocked_share_pp: { type: 'number', minimum: 0, maximum: 100 },
    pattern_flows: { type: 'integer', minimum: 0 },
    protected_hits: { type: 'integer', minimum: 0 },
    fail_open: { type: 'integer', minimum: 0 },
    worker_restarts: { type: 'integer', minimum: 0 },
  },
};
const SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['stages'],
  properties: {
    stages: {
      type: 'array',
      minItems: 1,
      maxItems: 20,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'select', 'bake_s'],
        properties: {
          name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9 ._%-]{0,63}$' },
          mode: { enum: ['shadow', 'enforce'] },
          select: {
            oneOf: [
              { const: 'all' },
              {
                type: 'object',
                additionalProperties: false,
                required: ['labels'],
                properties: {
                  labels: {
                    type: 'object',
                    minProperties: 1,
                    additionalProperties: { type: 'string', maxLength: 128 },
                  },
                },
              },
              {
                type: 'object',
                additionalProperties: false,
                required: ['percent'],
                properties: { percent: { type: 'number', exclusiveMinimum: 0, maximum: 100 } },
              },
            ],
          },
          bake_s: { type: 'number', minimum: 0, maximum: 7 * 86400 },
          analysis: {
            type: 'object',
            additionalProperties: false,
            properties: {
              interval_s: { type: 'number', minimum: 0.5, maximum: 3600 },
              threshold: { type: 'integer', minimum: 1, maximum: 100 },
              limits: LIMITS_SCHEMA,
            },
          },
        },
      },
    },
  },
};

let validator: ValidateFunction | null = null;
function getValidator(): ValidateFunction {
  if (!validator) {
    const Ajv = ((AjvModule as unknown as { default?: unknown }).default ?? AjvModule) as new (o: object) => {
      compile(s: object): ValidateFunction;
    };
    validator = new Ajv({ allErrors: false, strict: false }).compile(SCHEMA);
  }
  return validator;
}

function field(instancePath: string): string {
  return (
    instancePath
      .slice(1)
      .split('/')
      .filter(Boolean)
      .map((s) => (/^\d+$/.test(s) ? `[${s}]` : `.${s}`))
      .join('')
      .replace(/^\./, '') || 'plan'
  );
}

function describe(e: ErrorObject): string {
  const f = field(e.instancePath);
  if (e.keyword === 'additionalProperties')
    return `${f}: unknown key '${(e.params as { additionalProperty: string }).additionalProperty}'`;
  if (e.keyword === 'required')
    return `${f}: missing required key '${(e.params as { missingProperty: string }).missingProperty}'`;
  if (e.keyword === 'oneOf' || /\/select(\/percent)?$/.test(e.instancePath))
    return `${f.replace(/\.percent$/, '')}: must be "all", {labels: {k: v}} or {percent: N} with 0 < N ≤ 100`;
  return `${f}: ${e.message ?? 'invalid'}`;
}

/** The plan used when `POST /v1/rollouts` names none. */
export function defaultPlan(): Plan {
  return normalise({
    stages: [
      { name: 'shadow', mode: 'shadow', select: 'all', bake_s: 30 },
      { name: 'canary', select: { labels: { tier: 'canary' } }, bake_s: 30 },
      { name: '10%', select: { percent: 10 }, bake_s: 30 },
      { name: '50%', select: { percent: 50 }, bake_s: 30 },
      { name: 'all', select: 'all', bake_s: 30 },
    ],
  });
}

function normalise(o: unknown): Plan {
  const p = o as { stages: (Partial<Stage> & { analysis?: Partial<Stage['analysis']> })[] };
  return {
    stages: p.stages.map((s) => ({
      name: s.name!,
      mode: s.mode ?? 'enforce',
      select: s.select!,
      bake_s: s.bake_s!,
      analysis: {
        interval_s: s.analysis?.interval_s ?? DEFAULT_ANALYSIS.interval_s,
        threshold: s.analysis?.threshold ?? DEFAULT_ANALYSIS.threshold,
        limits: { ...DEFAULT_LIMITS, ...(s.analysis?.limits ?? {}) },
      },
    })),
  };
}

/**
 * Parse and validate a plan given as text (YAML or JSON) or as an already-parsed object. Throws a
 * 400 ApiError (code ERR_PLAN) naming the field; nothing is half-applied.
 */
export function parsePlan(input: unknown): Plan {
  let o = input;
  if (typeof input === 'string') {
    try {
      o = parseYaml(input, { maxAliasCount: 10 });
    } catch (e) {
      throw new ApiError(400, 'ERR_PLAN', `plan: not YAML or JSON: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  const v = getValidator();
  if (!v(o)) throw new ApiError(400, 'ERR_PLAN', `plan: ${describe(v.errors![0])}`);
  const plan = normalise(o);
  const names = new Set<string>();
  plan.stages.forEach((s, i) => {
    if (names.has(s.name))
      throw new ApiError(400, 'ERR_PLAN', `plan: stages[${i}].name: '${s.name}' repeated`);
    names.add(s.name);
  });
  return plan;
}
