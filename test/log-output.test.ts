// Where log lines go (src/ops/log-output.ts): a stdout that stalls, fills or fails costs the
// server lines, never its answers, its memory or its exit.
import { spawnSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { logOutput } from '../src/ops/log-output.js';

const folders: string[] = [];
const fds: number[] = [];
afterEach(() => {
  for (const fd of fds.splice(0)) closeSync(fd);
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

function folder(): string {
  const made = mkdtempSync(join(tmpdir(), 'log-output-'));
  folders.push(made);
  return made;
}

/** A pipe (a FIFO): its write end's descriptor, and its read end to read it when the test says. */
function pipe() {
  const path = join(folder(), 'fifo');
  expect(spawnSync('mkfifo', [path]).status).toBe(0);
  const readEnd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  const writeEnd = openSync(path, 'w');
  fds.push(writeEnd);
  return { writeEnd, reader: () => new Socket({ fd: readEnd, readable: true, writable: false }) };
}

const line = (i: number) => `{"level":30,"msg":"line ${i}","pad":"${'x'.repeat(100)}"}\n`;

describe('logOutput on a pipe', () => {
  it('holds at most its buffer while nobody reads, drops the rest, and says how many once the reader takes them', async () => {
    const { writeEnd, reader } = pipe();
    const dropped: number[] = [];
    const output = logOutput({ fd: writeEnd, maxBufferedChars: 64 * 1024, onDropped: (lines) => dropped.push(lines) });
    for (let i = 0; i < 5000; i += 1) output.write(line(i)); // 600 KB: the pipe takes 64 KB, the buffer 64 KB
    await new Promise((resolve) => setImmediate(resolve));
    expect(dropped).toEqual([]);
    let read = '';
    const socket = reader();
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (read += chunk));
    await output.drained(5000);
    output.write(line(5000)); // a write that goes through: the drops are told
    await vi.waitFor(() => expect(read).toContain('line 5000'));
    socket.destroy();
    const received = read.split('\n').filter(Boolean).length;
    expect(received).toBeLessThan(5001);
    expect(dropped).toEqual([5001 - received]);
    // Whole lines, in order: what went through is a prefix of what was written, then the last.
    const numbers = read.split('\n').filter(Boolean).map((text) => Number(/line (\d+)/.exec(text)![1]));
    expect(numbers).toEqual([...numbers].sort((a, b) => a - b));
    expect(numbers.slice(0, -1)).toEqual(numbers.slice(0, -1).map((_, i) => i));
  });

  it('resolves drained after its time when the reader never comes', async () => {
    const { writeEnd } = pipe();
    const output = logOutput({ fd: writeEnd, maxBufferedChars: 1024 * 1024 });
    for (let i = 0; i < 2000; i += 1) output.write(line(i));
    const started = performance.now();
    await output.drained(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(150);
  });
});

describe('logOutput on a file or a device', () => {
  it('writes the lines of a turn together, in order', async () => {
    const path = join(folder(), 'log');
    const fd = openSync(path, 'w');
    fds.push(fd);
    const output = logOutput({ fd });
    for (let i = 0; i < 3; i += 1) output.write(line(i));
    expect(readFileSync(path, 'utf8')).toBe('');
    await output.drained(100);
    expect(readFileSync(path, 'utf8')).toBe(line(0) + line(1) + line(2));
    output.write(line(3));
    output.flushSync();
    expect(readFileSync(path, 'utf8')).toContain('line 3');
  });

  it('drops the lines a full device refuses (ENOSPC), without throwing', async () => {
    const fd = openSync('/dev/full', 'w');
    fds.push(fd);
    const dropped: number[] = [];
    const output = logOutput({ fd, onDropped: (lines) => dropped.push(lines) });
    output.write(line(0));
    expect(() => output.flushSync()).not.toThrow();
    await output.drained(100);
    expect(dropped).toEqual([]); // told once a write goes through: none does here
  });
});
