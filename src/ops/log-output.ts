// Where the server's log lines go: stdout, in a way that never stops the server (L19:
// pino's own writer retried a failed write every 100 ms for ever inside a blocking sleep,
// so the first log line on a full log disk hung the server, SIGTERM included; and a pipe
// nobody read grew the process without bound and held its exit for ever).
// - A pipe or a socket (a supervisor, a container's log driver, `| tee`): written through a
//   non-blocking stream of the event loop, at most MAX_BUFFERED_CHARS waiting in it; what
//   does not fit while the reader stalls is dropped. (Not by writes on the thread pool: one
//   blocked in write() on a full pipe held the process's exit, which waits for that thread.)
// - Anything else (a file, /dev/null, a terminal): written at once, as pino's default writer
//   does; a write that fails (a full disk) drops its lines.
// Dropped lines are counted, and the count logged once a write goes through again.
import { closeSync, fstatSync, writeSync } from 'node:fs';
import { Socket } from 'node:net';

/** Characters of log lines held while a pipe's reader does not take them (about 8,000 lines at info). */
const MAX_BUFFERED_CHARS = 4 * 1024 * 1024;

export interface LogOutput {
  write(line: string): void;
  /** Writes now what waits for the next turn (pino calls it after a fatal line; the exit too). */
  flushSync(): void;
  /** Resolves once everything is written, or after `ms`. */
  drained(ms: number): Promise<void>;
  /** Stops writing and closes the descriptor (a pipe's: it is the stream's). */
  close(): void;
}

export interface LogOutputOptions {
  fd?: number;
  maxBufferedChars?: number;
  /** Lines were dropped (a reader that stalled, a failed write); called once a write goes through again. */
  onDropped?: (lines: number) => void;
}

export function logOutput({ fd = 1, maxBufferedChars = MAX_BUFFERED_CHARS, onDropped = () => {} }: LogOutputOptions = {}): LogOutput {
  const kind = fstatSync(fd);
  return kind.isFIFO() || kind.isSocket() ? streamOutput(fd, maxBufferedChars, onDropped) : directOutput(fd, onDropped);
}

/** A counter of dropped lines that reports them when a write goes through. */
function dropCounter(onDropped: (lines: number) => void) {
  let dropped = 0;
  return {
    drop: (lines: number) => void (dropped += lines),
    wrote() {
      if (dropped === 0) return;
      const lines = dropped;
      dropped = 0;
      onDropped(lines);
    },
  };
}

function streamOutput(fd: number, maxBufferedChars: number, onDropped: (lines: number) => void): LogOutput {
  const drops = dropCounter(onDropped);
  const stream = new Socket({ fd, readable: false, writable: true });
  let broken = false;
  // EPIPE (the reader is gone): nothing written from here on is read.
  stream.on('error', () => (broken = true));
  stream.unref();
  return {
    write(line) {
      if (broken || stream.writableLength + line.length > maxBufferedChars) return drops.drop(1);
      const before = stream.writableLength;
      stream.write(line);
      if (before === 0) drops.wrote();
    },
    flushSync() {},
    drained(ms) {
      if (broken || stream.writableLength === 0) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const timer = setTimeout(done, ms);
        function done() {
          clearTimeout(timer);
          stream.off('drain', done);
          resolve();
        }
        stream.once('drain', done);
      });
    },
    close() {
      broken = true;
      stream.destroy();
    },
  };
}

function directOutput(fd: number, onDropped: (lines: number) => void): LogOutput {
  const drops = dropCounter(onDropped);
  let queued: string[] = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (queued.length === 0) return;
    const lines = queued.length;
    let buffer = Buffer.from(queued.join(''));
    queued = [];
    try {
      while (buffer.length > 0) buffer = buffer.subarray(writeSync(fd, buffer));
    } catch {
      return drops.drop(lines); // a full disk: these lines are lost, the next are tried
    }
    drops.wrote();
  };
  return {
    write(line) {
      queued.push(line);
      // The lines of one turn of the event loop in one write.
      if (scheduled) return;
      scheduled = true;
      setImmediate(flush);
    },
    flushSync: flush,
    drained: async () => flush(),
    close() {
      flush();
      closeSync(fd);
    },
  };
}
