// A leaf module: config.ts and the modules that also run without a configuration (tests,
// the bench) read these, so that a default is written once.

/** The defaults of the settings (the README's Configuration table) that modules fall back to without a configuration. */
export const DEFAULTS = Object.freeze({
  http: Object.freeze({ requestTimeoutMs: 30_000, headersTimeoutMs: 10_000, keepAliveTimeoutMs: 5000 }),
  lockWaitMs: 5000,
  agentReplyTimeoutMs: 30_000,
  eventStreamsMax: 10_000,
  eventStreamsPerKeyMax: 1000,
  webhooksPerKeyMax: 100,
  postgres: Object.freeze({ poolSize: 10, statementTimeoutMs: 5000 }),
  sqliteSynchronous: 'normal' as 'normal' | 'full',
  webhookPrivateAddresses: 'allow' as 'allow' | 'deny',
});
