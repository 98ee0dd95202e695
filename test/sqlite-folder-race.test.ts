// Two servers starting at once on a new folder: the one whose mkdir loses the race finds
// the folder made by the other, which is as good (mkdir is made to lose here).
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it, vi } from 'vitest';
import { openSqliteStore } from '../src/storage/sqlite/sqlite-store.js';

vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs')>();
  return {
    ...real,
    mkdirSync: vi.fn((path: fs.PathLike, options?: fs.MakeDirectoryOptions) => {
      real.mkdirSync(path, options); // the other process
      throw Object.assign(new Error(`EEXIST: file already exists, mkdir '${String(path)}'`), { code: 'EEXIST' });
    }),
  };
});

const folders: string[] = [];
afterEach(() => {
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

it('opens the database in a folder another process made between its look and its mkdir', async () => {
  const folder = mkdtempSync(join(tmpdir(), 'sessions-api-folder-race-'));
  folders.push(folder);
  const databasePath = join(folder, 'a', 'b', 'sessions.db');
  const store = openSqliteStore(databasePath);
  await store.close();
  expect(vi.mocked(fs.mkdirSync)).toHaveBeenCalledTimes(2);
  expect(statSync(databasePath).isFile()).toBe(true);
});
