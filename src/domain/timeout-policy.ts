// The timeout policy: how a session's configuration, expiry, renewals and end are
// decided. Pure functions of configuration and time (epoch ms); no I/O, no clock.
import type { components } from '../../generated/api.js';

export type TimeoutConfig = components['schemas']['TimeoutConfig'];
export type TimeoutConfigInput = components['schemas']['TimeoutConfigInput'];
type AgentSettings = components['schemas']['AgentSettings'];

const MINUTE_MS = 60_000;

/** The part of a session the policy reads and writes. Times are epoch milliseconds. */
export interface SessionTiming {
  createdAt: number;
  lastActivity: number;
  /** Time of the last renewal; creation counts as one. */
  anchorAt: number;
  expiresAt: number;
  /** From here on the session is near expiration: expiresAt − warningThresholdMinutes. */
  warnsAt: number;
  renewalCount: number;
  config: TimeoutConfig;
}

export const BUILT_IN_DEFAULTS: TimeoutConfig = Object.freeze({
  timeoutMinutes: 30,
  autoRenew: true,
  maxDurationMinutes: 720,
  warningThresholdMinutes: 5,
});

/** The session defaults an agent carries in its settings, as a configuration layer. */
export function agentTimeoutLayer(settings: AgentSettings | undefined): TimeoutConfigInput {
  return {
    timeoutMinutes: settings?.SESSION_TIMEOUT_MINUTES,
    autoRenew: settings?.SESSION_AUTO_RENEW,
    maxDurationMinutes: settings?.SESSION_MAX_DURATION_MINUTES,
    warningThresholdMinutes: settings?.SESSION_WARNING_THRESHOLD_MINUTES,
  };
}

/**
 * Resolves the effective configuration field by field: the first layer that defines a
 * field wins (request, then agent, then server), else the built-in default. A maximum
 * duration below the timeout is raised to the timeout.
 */
export function resolveTimeoutConfig(...layers: Array<TimeoutConfigInput | undefined>): TimeoutConfig {
  const pick = <K extends keyof TimeoutConfig>(key: K): TimeoutConfig[K] => {
    for (const layer of layers) {
      const value = layer?.[key];
      if (value !== undefined) return value as TimeoutConfig[K];
    }
    return BUILT_IN_DEFAULTS[key];
  };
  return normalizeTimeoutConfig({
    timeoutMinutes: pick('timeoutMinutes'),
    autoRenew: pick('autoRenew'),
    maxDurationMinutes: pick('maxDurationMinutes'),
    warningThresholdMinutes: pick('warningThresholdMinutes'),
  });
}

/** A session can never be shorter than one timeout: the maximum is raised to the timeout. */
export function normalizeTimeoutConfig(config: TimeoutConfig): TimeoutConfig {
  return { ...config, maxDurationMinutes: Math.max(config.maxDurationMinutes, config.timeoutMinutes) };
}

function maxEnd(timing: Pick<SessionTiming, 'createdAt' | 'config'>): number {
  return timing.createdAt + timing.config.maxDurationMinutes * MINUTE_MS;
}

/** Expiry never passes the maximum duration: min(anchor + timeout, created + max). */
export function computeExpiresAt(createdAt: number, anchorAt: number, config: TimeoutConfig): number {
  return Math.min(anchorAt + config.timeoutMinutes * MINUTE_MS, maxEnd({ createdAt, config }));
}

/**
 * Recomputes what follows from the anchor and the configuration. The timing is built
 * field by field, here and below: V8 copies an object spread holding epoch milliseconds
 * (doubles) on a slow path, about 1-2 µs each (a session record: `{ ...session }`).
 */
function withExpiry({ createdAt, lastActivity, anchorAt, renewalCount, config }: Omit<SessionTiming, 'expiresAt' | 'warnsAt'>): SessionTiming {
  const expiresAt = computeExpiresAt(createdAt, anchorAt, config);
  return { createdAt, lastActivity, anchorAt, renewalCount, config, expiresAt, warnsAt: expiresAt - config.warningThresholdMinutes * MINUTE_MS };
}

/** The timing part of a session, with `lastActivity` at `now`. */
function activeAt({ createdAt, anchorAt, expiresAt, warnsAt, renewalCount, config }: SessionTiming, now: number): SessionTiming {
  return { createdAt, lastActivity: now, anchorAt, expiresAt, warnsAt, renewalCount, config };
}

/** A new session: creation is its first renewal (the anchor), but not counted as one. */
export function startTiming(now: number, config: TimeoutConfig): SessionTiming {
  return withExpiry({ createdAt: now, lastActivity: now, anchorAt: now, renewalCount: 0, config });
}

/**
 * Activity (a heartbeat, a message) always counts; with autoRenew it is also a renewal.
 * A clock stepped back (or another instance's behind) moves neither the last activity nor
 * the anchor back: an expiry never moves back, and nothing happens before creation.
 */
export function recordActivity(timing: SessionTiming, now: number): { timing: SessionTiming; renewed: boolean } {
  const at = Math.max(now, timing.lastActivity);
  // Before the anchor, a renewal would extend nothing: activity only.
  if (!timing.config.autoRenew || now < timing.anchorAt) return { timing: activeAt(timing, at), renewed: false };
  const { createdAt, renewalCount, config } = timing;
  return { timing: withExpiry({ createdAt, lastActivity: at, anchorAt: now, renewalCount: renewalCount + 1, config }), renewed: true };
}

/**
 * A manual renewal, whatever autoRenew says; 'at-maximum' (refused) when the expiry is
 * already at the maximum. Before the anchor (a clock stepped back, or an instance's clock
 * behind another's) it would extend nothing: as for activity, no renewal, nothing counted.
 */
export function renew(timing: SessionTiming, now: number): { timing: SessionTiming; renewed: boolean } | 'at-maximum' {
  if (timing.expiresAt >= maxEnd(timing)) return 'at-maximum';
  if (now < timing.anchorAt) return { timing, renewed: false };
  const { createdAt, lastActivity, renewalCount, config } = timing;
  return { timing: withExpiry({ createdAt, lastActivity, anchorAt: now, renewalCount: renewalCount + 1, config }), renewed: true };
}

/** Changes only the given fields, then recomputes expiry from the same anchor. */
export function updateConfig(timing: SessionTiming, change: TimeoutConfigInput): SessionTiming {
  const config = { ...timing.config };
  for (const key of Object.keys(change) as Array<keyof TimeoutConfigInput>) {
    if (change[key] !== undefined) (config as Record<string, unknown>)[key] = change[key];
  }
  const { createdAt, lastActivity, anchorAt, renewalCount } = timing;
  return withExpiry({ createdAt, lastActivity, anchorAt, renewalCount, config: normalizeTimeoutConfig(config) });
}

/** Expired is the moment `now` reaches `expiresAt`, not a moment later. */
export function isExpired(expiresAt: number, now: number): boolean {
  return now >= expiresAt;
}

/** An expired session is kept (answering "expired") for the retention period, then purged. */
export function purgeCutoff(now: number, retentionMs: number): number {
  return now - retentionMs;
}

export type Lifecycle = 'active' | 'expired' | 'purged';

/**
 * Where a session stands at `now`; judged from the clock, never from a sweeper's work,
 * except that an expiry once announced is final: a clock stepped back (or an instance's
 * clock behind the one that announced it) does not bring the session back.
 */
export function lifecycle(expiresAt: number, now: number, retentionMs: number, announced: Announced = 'nothing'): Lifecycle {
  if (expiresAt <= purgeCutoff(now, retentionMs)) return 'purged';
  return announced === 'expiry' || isExpired(expiresAt, now) ? 'expired' : 'active';
}

export function timeRemaining(expiresAt: number, now: number): number {
  return Math.max(0, expiresAt - now);
}

/** 0 < timeRemaining ≤ warningThresholdMinutes, i.e. warnsAt ≤ now < expiresAt. */
export function isNearExpiration(timing: Pick<SessionTiming, 'expiresAt' | 'warnsAt'>, now: number): boolean {
  return now >= timing.warnsAt && now < timing.expiresAt;
}

/**
 * What a session has announced of its current deadline: nothing yet, its warning, or its
 * expiry (after which nothing more is due).
 */
export type Announced = 'nothing' | 'warning' | 'expiry';

export type DueEventType = 'session.warning' | 'session.expired';

/**
 * The next announcement due and its moment: the warning at `warnsAt` (once per deadline),
 * then the expiry at `expiresAt` (once). The due moments are what the event pump indexes.
 */
export function nextDue(timing: Pick<SessionTiming, 'warnsAt' | 'expiresAt'>, announced: Announced): { type: DueEventType; at: number } | undefined {
  if (announced === 'expiry') return undefined;
  if (announced === 'nothing' && timing.warnsAt < timing.expiresAt) return { type: 'session.warning', at: timing.warnsAt };
  return { type: 'session.expired', at: timing.expiresAt };
}

/** What a session has announced once `type` has fired. */
export function announcedBy(type: DueEventType): Announced {
  return type === 'session.warning' ? 'warning' : 'expiry';
}

/**
 * After a change of timing at `now` (`previous`: the timing before; none for a creation):
 * what the session has announced, and the due event the change announces itself, dated
 * `now`. A deadline that moved re-arms the warning (one warning per deadline); a deadline
 * already reached expires the session at once; a warning moment the change brought to now
 * or before (a threshold at least the time left) warns at once: dated at that moment, the
 * warning would precede the change that made it, even the session's creation. A warning
 * already due at the same moment before the change stays the pump's, dated that moment.
 * A warning of the previous deadline that was due and not yet announced (the pump runs a
 * little after its moment) is not lost with that deadline: `overdueWarning`, the change
 * announces it first, dated its moment, as the pump would have.
 */
export function announcementsAfterChange(
  before: Announced,
  previous: Pick<SessionTiming, 'expiresAt' | 'warnsAt'> | undefined,
  timing: SessionTiming,
  now: number,
): { announced: Announced; announcing?: DueEventType; overdueWarning?: true } {
  const deadlineKept = timing.expiresAt === previous?.expiresAt;
  const overdue = !deadlineKept && previous !== undefined && nextDue(previous, before)?.type === 'session.warning' && previous.warnsAt <= now;
  const outcome = announcementsOfTiming(before, previous, timing, now, deadlineKept);
  return overdue ? { ...outcome, overdueWarning: true } : outcome;
}

function announcementsOfTiming(
  before: Announced,
  previous: Pick<SessionTiming, 'expiresAt' | 'warnsAt'> | undefined,
  timing: SessionTiming,
  now: number,
  deadlineKept: boolean,
): { announced: Announced; announcing?: DueEventType } {
  if (isExpired(timing.expiresAt, now)) return { announced: 'expiry', announcing: 'session.expired' };
  const kept = deadlineKept ? before : 'nothing';
  const alreadyDue = deadlineKept && timing.warnsAt === previous?.warnsAt;
  if (kept === 'nothing' && !alreadyDue && isNearExpiration(timing, now)) return { announced: 'warning', announcing: 'session.warning' };
  return { announced: kept };
}
