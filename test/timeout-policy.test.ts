import { describe, expect, it } from 'vitest';
import {
  announcementsAfterChange,
  agentTimeoutLayer,
  BUILT_IN_DEFAULTS,
  computeExpiresAt,
  isExpired,
  isNearExpiration,
  lifecycle,
  normalizeTimeoutConfig,
  purgeCutoff,
  recordActivity,
  renew,
  resolveTimeoutConfig,
  startTiming,
  timeRemaining,
  type SessionTiming,
  updateConfig,
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
      warnsAt: T0 + 25 * MINUTE,
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

const config = (overrides = {}) => ({ timeoutMinutes: 30, autoRenew: true, maxDurationMinutes: 60, warningThresholdMinutes: 5, ...overrides });

describe('recordActivity', () => {
  it('with autoRenew: sets lastActivity, moves the anchor, counts a renewal, recomputes expiry', () => {
    const { timing, renewed } = recordActivity(startTiming(T0, config()), T0 + 10 * MINUTE);
    expect(renewed).toBe(true);
    expect(timing).toEqual({
      createdAt: T0,
      lastActivity: T0 + 10 * MINUTE,
      anchorAt: T0 + 10 * MINUTE,
      expiresAt: T0 + 40 * MINUTE,
      warnsAt: T0 + 35 * MINUTE,
      renewalCount: 1,
      config: config(),
    });
  });

  it('with autoRenew: never extends past createdAt + maxDuration, yet still renews (the anchor moves)', () => {
    const { timing } = recordActivity(startTiming(T0, config()), T0 + 50 * MINUTE);
    expect(timing.expiresAt).toBe(T0 + 60 * MINUTE);
    expect(timing.anchorAt).toBe(T0 + 50 * MINUTE);
    expect(timing.renewalCount).toBe(1);
  });

  it('without autoRenew: only lastActivity changes', () => {
    const start = startTiming(T0, config({ autoRenew: false }));
    const { timing, renewed } = recordActivity(start, T0 + 10 * MINUTE);
    expect(renewed).toBe(false);
    expect(timing).toEqual({ ...start, lastActivity: T0 + 10 * MINUTE });
  });
});

describe('renew', () => {
  it('renews whatever autoRenew says, without touching lastActivity', () => {
    const start = startTiming(T0, config({ autoRenew: false }));
    expect(renew(start, T0 + 10 * MINUTE)).toEqual({
      renewed: true,
      timing: { ...start, anchorAt: T0 + 10 * MINUTE, expiresAt: T0 + 40 * MINUTE, warnsAt: T0 + 35 * MINUTE, renewalCount: 1 },
    });
  });

  it('extends up to the maximum, then refuses once expiresAt equals createdAt + maxDuration', () => {
    const capped = (renew(startTiming(T0, config()), T0 + 45 * MINUTE) as { timing: SessionTiming }).timing;
    expect(capped.expiresAt).toBe(T0 + 60 * MINUTE);
    expect(renew(capped, T0 + 46 * MINUTE)).toBe('at-maximum');
    // Both rules apply before the anchor: the refusal wins (a 422 whatever the clock says).
    expect(renew(capped, capped.anchorAt - 1)).toBe('at-maximum');
  });

  it('refuses at once a session whose timeout equals its maximum', () => {
    expect(renew(startTiming(T0, config({ maxDurationMinutes: 30 })), T0 + 1)).toBe('at-maximum');
  });
});

describe('updateConfig', () => {
  it('changes only the given fields and recomputes expiry from the same anchor', () => {
    const active = recordActivity(startTiming(T0, config({ maxDurationMinutes: 120 })), T0 + 10 * MINUTE).timing;
    const updated = updateConfig(active, { timeoutMinutes: 15 });
    expect(updated).toEqual({
      ...active,
      config: config({ maxDurationMinutes: 120, timeoutMinutes: 15 }),
      expiresAt: T0 + 25 * MINUTE,
      warnsAt: T0 + 20 * MINUTE,
    });
    expect(updateConfig(active, {})).toEqual(active);
    expect(updateConfig(active, { warningThresholdMinutes: 10 }).warnsAt).toBe(active.expiresAt - 10 * MINUTE);
  });

  it('raises the maximum to a longer timeout and caps expiry at a shorter maximum', () => {
    const start = startTiming(T0, config());
    expect(updateConfig(start, { timeoutMinutes: 90 }).config.maxDurationMinutes).toBe(90);
    expect(updateConfig(start, { timeoutMinutes: 90 }).expiresAt).toBe(T0 + 90 * MINUTE);
    const active = recordActivity(start, T0 + 20 * MINUTE).timing;
    expect(updateConfig(active, { maxDurationMinutes: 40 }).expiresAt).toBe(T0 + 40 * MINUTE);
  });
});

describe('lifecycle, timeRemaining and isNearExpiration', () => {
  const retention = 60 * MINUTE;
  it('is active before expiresAt, expired from it, purged from expiresAt + retention', () => {
    expect(lifecycle(T0, T0 - 1, retention)).toBe('active');
    expect(lifecycle(T0, T0, retention)).toBe('expired');
    expect(lifecycle(T0, T0 + retention - 1, retention)).toBe('expired');
    expect(lifecycle(T0, T0 + retention, retention)).toBe('purged');
    expect(lifecycle(T0, T0, 0)).toBe('purged');
    expect(purgeCutoff(T0 + retention, retention)).toBe(T0);
  });

  it('counts the milliseconds remaining, never below zero', () => {
    expect(timeRemaining(T0, T0 - 1234)).toBe(1234);
    expect(timeRemaining(T0, T0)).toBe(0);
    expect(timeRemaining(T0, T0 + 5)).toBe(0);
  });

  it('is near expiration exactly when 0 < timeRemaining <= warningThreshold', () => {
    const timing = startTiming(T0, config());
    const warnsAt = T0 + 25 * MINUTE;
    expect(isNearExpiration(timing, warnsAt - 1)).toBe(false);
    expect(isNearExpiration(timing, warnsAt)).toBe(true);
    expect(isNearExpiration(timing, timing.expiresAt - 1)).toBe(true);
    expect(isNearExpiration(timing, timing.expiresAt)).toBe(false);
  });
});

describe('a clock stepped back', () => {
  it('moves neither lastActivity nor the anchor back, with or without autoRenew, nor a manual renewal, counting none', () => {
    const later = recordActivity(startTiming(T0, config()), T0 + 10 * MINUTE).timing;
    const back = T0 - 60 * MINUTE;
    // Before the anchor a renewal would extend nothing: activity only, not counted.
    expect(recordActivity(later, back)).toMatchObject({ renewed: false, timing: { lastActivity: T0 + 10 * MINUTE, anchorAt: T0 + 10 * MINUTE, expiresAt: later.expiresAt, renewalCount: 1 } });
    const manual = recordActivity(startTiming(T0, config({ autoRenew: false })), T0 + 10 * MINUTE).timing;
    expect(recordActivity(manual, back).timing).toMatchObject({ lastActivity: T0 + 10 * MINUTE, expiresAt: manual.expiresAt });
    // A manual renewal there would extend nothing either: no renewal, the timing as it was.
    expect(renew(later, back)).toEqual({ renewed: false, timing: later });
    expect(renew(later, later.anchorAt - 1)).toEqual({ renewed: false, timing: later });
    expect(renew(later, later.anchorAt)).toMatchObject({ renewed: true, timing: { anchorAt: later.anchorAt, renewalCount: 2 } });
  });

  it('lifecycle: an announced expiry is final before expiresAt, and purged still comes with retention', () => {
    const expiresAt = T0 + 30 * MINUTE;
    expect(lifecycle(expiresAt, T0, 60 * MINUTE, 'expiry')).toBe('expired');
    expect(lifecycle(expiresAt, T0, 60 * MINUTE, 'warning')).toBe('active');
    expect(lifecycle(expiresAt, expiresAt + 60 * MINUTE, 60 * MINUTE, 'expiry')).toBe('purged');
  });
});

describe('announcementsAfterChange', () => {
  const config = { timeoutMinutes: 30, autoRenew: true, maxDurationMinutes: 720, warningThresholdMinutes: 5 };
  const start = startTiming(T0, config);
  const at = (expiresAt: number, warnsAt: number) => ({ ...start, expiresAt, warnsAt });

  it('warns at once a creation near expiration from the start, and nothing otherwise', () => {
    expect(announcementsAfterChange('nothing', undefined, startTiming(T0, { ...config, warningThresholdMinutes: 30 }), T0)).toEqual({ announced: 'warning', announcing: 'session.warning' });
    expect(announcementsAfterChange('nothing', undefined, start, T0)).toEqual({ announced: 'nothing' });
  });

  it('expires at once a deadline reached; re-arms a moved one, warning at once when its moment is reached', () => {
    expect(announcementsAfterChange('warning', start, at(T0 + MINUTE, T0), T0 + MINUTE)).toEqual({ announced: 'expiry', announcing: 'session.expired' });
    expect(announcementsAfterChange('warning', start, at(T0 + 40 * MINUTE, T0 + 35 * MINUTE), T0 + 26 * MINUTE)).toEqual({ announced: 'nothing' });
    expect(announcementsAfterChange('warning', start, at(T0 + 28 * MINUTE, T0 + 23 * MINUTE), T0 + 26 * MINUTE)).toEqual({ announced: 'warning', announcing: 'session.warning' });
  });

  it('keeps what a kept deadline announced; a warning already due at the same moment stays the pump\'s; a threshold moved to before now warns at once', () => {
    expect(announcementsAfterChange('warning', start, start, T0 + 26 * MINUTE)).toEqual({ announced: 'warning' });
    expect(announcementsAfterChange('nothing', start, start, T0 + 26 * MINUTE)).toEqual({ announced: 'nothing' });
    expect(announcementsAfterChange('nothing', start, at(start.expiresAt, T0 + MINUTE), T0 + 10 * MINUTE)).toEqual({ announced: 'warning', announcing: 'session.warning' });
    // One warning per deadline: a session that warned, its deadline kept and its warning moment moved (a PATCH of the threshold alone), does not warn again.
    expect(announcementsAfterChange('warning', start, at(start.expiresAt, T0 + 10 * MINUTE), T0 + 26 * MINUTE)).toEqual({ announced: 'warning' });
  });

  it('announces first the warning of a deadline moved while it was due and unannounced; not one announced, nor one not yet due', () => {
    const moved = at(T0 + 60 * MINUTE, T0 + 55 * MINUTE);
    expect(announcementsAfterChange('nothing', start, moved, start.warnsAt)).toEqual({ announced: 'nothing', overdueWarning: true });
    expect(announcementsAfterChange('nothing', start, moved, start.warnsAt - 1)).toEqual({ announced: 'nothing' });
    expect(announcementsAfterChange('warning', start, moved, start.warnsAt + 1)).toEqual({ announced: 'nothing' });
    // The deadline kept: the pump still has it.
    expect(announcementsAfterChange('nothing', start, start, start.warnsAt + 1)).toEqual({ announced: 'nothing' });
    // Moved and due at once itself: both warnings, the old first.
    expect(announcementsAfterChange('nothing', start, at(start.expiresAt + MINUTE, start.warnsAt), start.warnsAt + 1)).toEqual({ announced: 'warning', announcing: 'session.warning', overdueWarning: true });
    // A session without a warning (a threshold past its timeout's start) has none overdue.
    const noWarning = at(start.expiresAt, start.expiresAt);
    expect(announcementsAfterChange('nothing', noWarning, moved, start.warnsAt + 1)).toEqual({ announced: 'nothing' });
  });
});
