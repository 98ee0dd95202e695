// npm run keys -- create --name bot-1 [--agent <id>…] [--admin] | list | revoke <id or name>
// Manages the API keys of the server's store, chosen as the server chooses it: PostgreSQL
// at DATABASE_URL when set (every instance on it), else the SQLite file at DATABASE_PATH.
// A key is printed once, at creation; only its SHA-256 is stored. A running server sees
// every change at its next request.
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { generateApiKey, hashApiKey } from './api-keys.js';
import { ConfigError, loadConfig, type ServerConfig } from './config.js';
import { announceUpgrade, describeStore, openStore } from './storage/open-store.js';
import { type ApiKeyRecord, NoStore, type Store } from './storage/store.js';

const USAGE = `usage: npm run keys -- create --name <name> [--agent <agentId>]... [--admin]
       npm run keys -- list
       npm run keys -- revoke <id or name>`;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function fail(message: string, code = 2): never {
  console.error(`sessions-api keys: ${message}`);
  process.exit(code);
}

function parsedArguments() {
  try {
    return parseArgs({
      allowPositionals: true,
      options: { name: { type: 'string' }, agent: { type: 'string', multiple: true }, admin: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (error) {
    // parseArgs' first sentence ("Unknown option '--x'"), not its advice on positionals.
    return fail(`${(error as Error).message.split(/\.\s/)[0]}\n${USAGE}`);
  }
}
const { values, positionals } = parsedArguments();
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const [command, ...rest] = positionals;
/** Controls, formats (bidi overrides, zero-width, BOM) and line or paragraph separators: each can forge or disguise a line of `list`. */
const FORBIDDEN_IN_NAME = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;

let config: ServerConfig;
try {
  config = loadConfig(process.env);
} catch (error) {
  if (error instanceof ConfigError) fail(`invalid configuration: ${error.message}`);
  throw error;
}

const describe = (key: ApiKeyRecord) =>
  [
    key.id,
    key.name,
    key.admin ? 'admin' : `agents: ${key.agentIds.join(', ')}`,
    `created ${new Date(key.createdAt).toISOString()}`,
    key.revokedAt === undefined ? 'live' : `revoked ${new Date(key.revokedAt).toISOString()}`,
  ].join('  ');

/**
 * The command, checked before the database is opened (opening migrates it: a typo must
 * not). Run, it answers why it refused, if it did: the store is closed first (exiting with
 * it open left its -wal and -shm beside the file).
 */
function commandToRun(): (store: Store) => Promise<string | undefined> {
  // An argument a command does not take is a mistake (`list --admin`, `create … stray`), not ignored.
  const words = command === 'revoke' ? [] : rest; // revoke's one is checked below
  const options = command === 'create' ? [] : (['name', 'agent', 'admin'] as const).filter((option) => values[option] !== undefined).map((option) => `--${option}`);
  const stray = [...words, ...options];
  if ((command === 'create' || command === 'list' || command === 'revoke') && stray.length > 0) fail(`${command} does not take ${stray.join(' ')}\n${USAGE}`);
  switch (command) {
    case 'create': {
      const name = values.name?.trim();
      const agentIds = [...new Set(values.agent ?? [])];
      const admin = values.admin === true;
      if (!name) fail(`--name is required (1-100 characters)\n${USAGE}`);
      if ([...name].length > 100) fail(`--name is ${[...name].length} characters; at most 100\n${USAGE}`);
      if (FORBIDDEN_IN_NAME.test(name)) fail('--name must not contain control or format characters (newlines, tabs, escapes, line separators, bidi overrides)');
      if (admin && agentIds.length > 0) fail(`give --admin (every agent) or --agent <agentId> (those agents), not both\n${USAGE}`);
      if (!admin && agentIds.length === 0) fail(`give either --admin or at least one --agent <agentId>\n${USAGE}`);
      const badAgent = agentIds.find((id) => !UUID.test(id));
      if (badAgent) fail(`--agent ${badAgent} is not a UUID`);
      return async (store) => {
        const key = generateApiKey();
        const record = { id: randomUUID(), name, keyHash: hashApiKey(key), admin, agentIds, createdAt: Date.now() };
        if (!(await store.insertApiKey(record))) return `a live key is already named ${name}`;
        console.log(`created ${describe(record)} (database: ${describeStore(config)})`);
        console.log(`key (shown once, store it now): ${key}`);
        return undefined;
      };
    }
    case 'list':
      return async (store) => {
        const keys = await store.listApiKeys();
        console.log(keys.length === 0 ? 'no keys (API keys are off unless API_KEYS is set)' : keys.map(describe).join('\n'));
        return undefined;
      };
    case 'revoke': {
      if (rest.length !== 1) fail(USAGE);
      const [idOrName] = rest as [string];
      return async (store) => {
        const revoked = await store.revokeApiKey(idOrName, Date.now());
        if (!revoked) return `no live key with id or name ${idOrName} (database: ${describeStore(config)})`;
        console.log(`revoked ${describe(revoked)}`);
        return undefined;
      };
    }
    default:
      return fail(USAGE);
  }
}

const run = commandToRun();
// A database in this process's memory is gone when it exits: no server could ever see a key made there.
if (!config.postgres && config.databasePath === ':memory:') {
  fail('DATABASE_PATH=:memory: is a database of this process alone, gone when it exits; name the file (or DATABASE_URL) the server uses', 1);
}
let store: Store;
try {
  // Only create may start a database: list or revoke on a mistyped name would make an
  // empty one, and "no live key" there could pass for a key already revoked.
  store = await openStore(config, { existing: command !== 'create', onUpgrade: announceUpgrade });
} catch (error) {
  if (error instanceof NoStore) fail(`${error.message}; nothing to ${command}`, 1);
  fail(`cannot open the database ${describeStore(config)}: ${error instanceof Error ? error.message : String(error)}`, 1);
}
let refused: string | undefined;
try {
  refused = await run(store);
} finally {
  await store.close();
}
if (refused !== undefined) fail(refused, 1);
