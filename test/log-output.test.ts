// Where log lines go (src/ops/log-output.ts): a stdout that stalls, fills or fails costs the
// server lines, never its answers, its memory or its exit.
import { spawnSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type LogOutput, type LogOutputOptions, logOutput } from '../src/ops/log-output.js';

const folders: string[] = [];
/** Closed after each test: outputs close their descriptor; a descriptor a stream wraps is the stream's to close. */
const outputs: LogOutput[] = [];
const readers: Array<Socket | number> = [];
afterEach(() => {
  for (const output of outputs.splice(0)) output.close();
  for (const reader of readers.splice(0)) typeof reader === 'number' ? closeSync(reader) : reader.destroy();
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

function output(options: LogOutputOptions): LogOutput {
  const made = logOutput(options);
  outputs.push(made);
  return made;
}

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
  readers.push(readEnd);
  const reader = () => {
    const socket = new Socket({ fd: readEnd, readable: true, writable: false });
    readers.splice(readers.indexOf(readEnd), 1, socket);
    return socket;
  };
  return { writeEnd, reader };
}

const line = (i: number) => `{"level":30,"msg":"line ${i}","pad":"${'x'.repeat(100)}"}\n`;

describe('logOutput on a pipe', () => {
  it('holds at most its buffer while nobody reads, drops the rest, and says how many once the reader takes them', async () => {
    const { writeEnd, reader } = pipe();
    const dropped: number[] = [];
    const out = output({ fd: writeEnd, maxBufferedChars: 64 * 1024, onDropped: (lines) => dropped.push(lines) });
    for (let i = 0; i < 5000; i += 1) out.write(line(i)); // 600 KB: the pipe takes 64 KB, the buffer 64 KB
    await new Promise((resolve) => setImmediate(resolve));
    expect(dropped).toEqual([]);
    let read = '';
    const socket = reader();
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (read += chunk));
    await out.drained(5000);
    out.write(line(5000)); // a write that goes through: the drops are told
    await vi.waitFor(() => expect(read).toContain('line 5000'));
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
    const out = output({ fd: writeEnd, maxBufferedChars: 1024 * 1024 });
    for (let i = 0; i < 2000; i += 1) out.write(line(i));
    const started = performance.now();
    await out.drained(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(150);
  });
});

describe('logOutput on a file or a device', () => {
  it('writes the lines of a turn together, in order', async () => {
    const path = join(folder(), 'log');
    const out = output({ fd: openSync(path, 'w') });
    for (let i = 0; i < 3; i += 1) out.write(line(i));
    expect(readFileSync(path, 'utf8')).toBe('');
    await out.drained(100);
    expect(readFileSync(path, 'utf8')).toBe(line(0) + line(1) + line(2));
    out.write(line(3));
    out.flushSync();
    expect(readFileSync(path, 'utf8')).toContain('line 3');
  });

  it('drops the lines a full device refuses (ENOSPC), without throwing', async () => {
    const dropped: number[] = [];
    const out = output({ fd: openSync('/dev/full', 'w'), onDropped: (lines) => dropped.push(lines) });
    out.write(line(0));
    expect(() => out.flushSync()).not.toThrow();
    await out.drained(100);
    expect(dropped).toEqual([]); // told once a write goes through: none does here
  });
});
