import { describe, expect, it } from 'vitest';
import {
  agentTimeoutLayer,
  BUILT_IN_DEFAULTS,
  computeExpiresAt,
  isExpired,
  normalizeTimeoutConfig,
  resolveTimeoutConfig,
  startTiming,
} from '../src/domain/timeout-policy.js';
import { MINUTE, T0 } from './helpers/fake-clock.js';

describe('resolveTimeoutConfig', () => {
  it('uses the built-in defaults 30 / true / 720 / 5 when no layer says anything', () => {
    expect(resolveTimeoutConfig()).toEqual({ timeoutMinutes: 30, autoRenew: true, maxDurationMinutes: 720, warningThresholdMinutes: 5 });
    expect(resolveTimeoutConfig(undefined, {}, undefined)).toEqual(BUILT_IN_DEFAULTS);
  });

  it('takes each field from the first layer that defines it: request, agent, server', () => {
    const request = { timeoutMinutes: 10 };
    const agent = { timeoutMinutes: 60, autoRenew: false };
    const server = { timeoutMinutes: 90, autoRenew: true, maxDurationMinutes: 100 };
    expect(resolveTimeoutConfig(request, agent, server)).toEqual({
      timeoutMinutes: 10,
      autoRenew: false,
      maxDurationMinutes: 100,
      warningThresholdMinutes: 5,
    });
  });

  it('keeps a false autoRenew from an earlier layer (false is a value, not a gap)', () => {
    expect(resolveTimeoutConfig({ autoRenew: false }, { autoRenew: true }).autoRenew).toBe(false);
  });

  it("raises maxDurationMinutes to timeoutMinutes when below it (the seed's 722 / 123)", () => {
    expect(resolveTimeoutConfig({ timeoutMinutes: 722, autoRenew: true, maxDurationMinutes: 123, warningThresholdMinutes: 123 })).toEqual({
      timeoutMinutes: 722,
      autoRenew: true,
      maxDurationMinutes: 722,
      warningThresholdMinutes: 123,
    });
    // A default maximum (720) below a requested timeout is raised too.
    expect(resolveTimeoutConfig({ timeoutMinutes: 1440 }).maxDurationMinutes).toBe(1440);
  });

  it('leaves a maximum at or above the timeout alone', () => {
    const config = { timeoutMinutes: 30, autoRenew: true, maxDurationMinutes: 30, warningThresholdMinutes: 5 };
    expect(normalizeTimeoutConfig(config)).toEqual(config);
    expect(normalizeTimeoutConfig({ ...config, maxDurationMinutes: 31 }).maxDurationMinutes).toBe(31);
  });
});

describe('agentTimeoutLayer', () => {
  it('maps the SESSION_* settings onto timeoutConfig fields', () => {
    expect(
      agentTimeoutLayer({
        SESSION_TIMEOUT_MINUTES: 60,
        SESSION_AUTO_RENEW: false,
        SESSION_MAX_DURATION_MINUTES: 120,
        SESSION_WARNING_THRESHOLD_MINUTES: 10,
      }),
    ).toEqual({ timeoutMinutes: 60, autoRenew: false, maxDurationMinutes: 120, warningThresholdMinutes: 10 });
    expect(resolveTimeoutConfig({}, agentTimeoutLayer({ other: 'x' }), {})).toEqual(BUILT_IN_DEFAULTS);
    expect(resolveTimeoutConfig({}, agentTimeoutLayer(undefined), {})).toEqual(BUILT_IN_DEFAULTS);
  });
});

describe('computeExpiresAt', () => {
  const config = { timeoutMinutes: 30, autoRenew: true, maxDurationMinutes: 60, warningThresholdMinutes: 5 };

  it('is anchor + timeout while that is within the maximum duration', () => {
    expect(computeExpiresAt(T0, T0, config)).toBe(T0 + 30 * MINUTE);
    expect(computeExpiresAt(T0, T0 + 29 * MINUTE, config)).toBe(T0 + 59 * MINUTE);
  });

  it('is capped at createdAt + maxDuration', () => {
    expect(computeExpiresAt(T0, T0 + 30 * MINUTE, config)).toBe(T0 + 60 * MINUTE);
    expect(computeExpiresAt(T0, T0 + 45 * MINUTE, config)).toBe(T0 + 60 * MINUTE);
  });
});

describe('startTiming', () => {
  it('anchors a new session at its creation, with no renewals counted', () => {
    const config = resolveTimeoutConfig();
    expect(startTiming(T0, config)).toEqual({
      createdAt: T0,
      lastActivity: T0,
      anchorAt: T0,
      expiresAt: T0 + 30 * MINUTE,
      renewalCount: 0,
      config,
    });
  });
});

describe('isExpired', () => {
  it('is expired exactly at expiresAt, not a millisecond before', () => {
    expect(isExpired(T0, T0 - 1)).toBe(false);
    expect(isExpired(T0, T0)).toBe(true);
    expect(isExpired(T0, T0 + 1)).toBe(true);
  });
});
