// Folders and the database file as the store makes them: private to its user; and
// two servers starting at once on a new folder: the one whose mkdir loses the race finds
// the folder made by the other, which is as good. Here mkdir is made to lose: node:fs's
// mkdirSync makes the folder, then throws EEXIST (patched on the module, which the
// store's named import follows once syncBuiltinESMExports() is called; restored after).
import fs, { mkdtempSync, rmSync, statSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { openSqliteStore } from '../src/storage/sqlite/sqlite-store.js';

const realMkdirSync = fs.mkdirSync;
const folders: string[] = [];
afterEach(() => {
  fs.mkdirSync = realMkdirSync;
  syncBuiltinESMExports();
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

it('opens the database in a folder another process made between its look and its mkdir', async () => {
  const folder = mkdtempSync(join(tmpdir(), 'sessions-api-folder-race-'));
  folders.push(folder);
  const made: string[] = [];
  fs.mkdirSync = ((path: fs.PathLike, options?: fs.MakeDirectoryOptions) => {
    realMkdirSync(path, options); // the other process
    made.push(String(path));
    throw Object.assign(new Error(`EEXIST: file already exists, mkdir '${String(path)}'`), { code: 'EEXIST' });
  }) as typeof fs.mkdirSync;
  syncBuiltinESMExports();
  const databasePath = join(folder, 'a', 'b', 'sessions.db');
  const store = openSqliteStore(databasePath);
  await store.close();
  expect(made).toEqual([join(folder, 'a'), join(folder, 'a', 'b')]);
  expect(statSync(databasePath).isFile()).toBe(true);
});

it("makes what it makes its user's alone (conversations, webhook secrets): folders 0700, the database, its WAL and index 0600; a file there keeps its mode", async () => {
  const folder = mkdtempSync(join(tmpdir(), 'sessions-api-private-'));
  folders.push(folder);
  const databasePath = join(folder, 'a', 'b', 'sessions.db');
  const store = openSqliteStore(databasePath);
  await store.probeWrite();
  const mode = (path: string) => statSync(path).mode & 0o777;
  expect([join(folder, 'a'), join(folder, 'a', 'b')].map(mode)).toEqual([0o700, 0o700]);
  expect([databasePath, `${databasePath}-wal`, `${databasePath}-shm`].map(mode)).toEqual([0o600, 0o600, 0o600]);
  await store.close();
  const shared = join(folder, 'shared.db');
  fs.writeFileSync(shared, '');
  fs.chmodSync(shared, 0o640);
  await openSqliteStore(shared).close();
  expect(mode(shared)).toBe(0o640);
  // A path that is a symlink to a file not made yet: the file made where it points is private too (R49).
  const target = join(folder, 'target.db');
  fs.symlinkSync(target, join(folder, 'link.db'));
  await openSqliteStore(join(folder, 'link.db')).close();
  expect(mode(target)).toBe(0o600);
});
