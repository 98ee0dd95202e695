// The timeout policy: how a session's effective configuration and expiry are decided.
// Pure functions of configuration and time (epoch ms); no I/O, no clock of their own.
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

/** Expiry never passes the maximum duration: min(anchor + timeout, created + max). */
export function computeExpiresAt(createdAt: number, anchorAt: number, config: TimeoutConfig): number {
  return Math.min(anchorAt + config.timeoutMinutes * MINUTE_MS, createdAt + config.maxDurationMinutes * MINUTE_MS);
}

/** A new session: creation is its first renewal (the anchor), but not counted as one. */
export function startTiming(now: number, config: TimeoutConfig): SessionTiming {
  return { createdAt: now, lastActivity: now, anchorAt: now, expiresAt: computeExpiresAt(now, now, config), renewalCount: 0, config };
}

/** Expired is the moment `now` reaches `expiresAt`, not a moment later. */
export function isExpired(expiresAt: number, now: number): boolean {
  return now >= expiresAt;
}
