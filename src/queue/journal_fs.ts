/**
 * The few file operations the journal uses, as an interface so unit tests can inject failures
 * (a full disk) — and the real implementation on `node:fs/promises`.
 */

import { mkdir, open, readdir, readFile, unlink } from "node:fs/promises";

/** An open segment file. */
export interface JournalFile {
  /** Writes `data` at `position`; resolves with the bytes written (may be fewer). */
  write(data: Uint8Array, position: number): Promise<number>;
  datasync(): Promise<void>;
  truncate(length: number): Promise<void>;
  /** Reads into `buf` from `position`; resolves with the bytes read. */
  read(buf: Uint8Array, position: number): Promise<number>;
  close(): Promise<void>;
}

/** File-system operations on the journal's directory. */
export interface JournalFs {
  mkdir(path: string): Promise<void>;
  readdir(path: string): Promise<string[]>;
  readFile(path: string): Promise<Uint8Array>;
  /** `create` makes a new file (exclusive) for writing; `read` opens it read-only. */
  open(path: string, mode: "create" | "read"): Promise<JournalFile>;
  unlink(path: string): Promise<void>;
  /** Makes a directory's entries (a new or removed file) durable. */
  syncDir(path: string): Promise<void>;
}

/** The real file system. */
export const nodeJournalFs: JournalFs = {
  mkdir: async (path) => {
    await mkdir(path, { recursive: true, mode: 0o700 });
  },
  readdir: (path) => readdir(path),
  readFile: (path) => readFile(path),
  open: async (path, mode) => {
    const fh = await open(path, mode === "create" ? "wx+" : "r", 0o600);
    return {
      write: async (data, position) =>
        (await fh.write(data, 0, data.length, position)).bytesWritten,
      datasync: () => fh.datasync(),
      truncate: (length) => fh.truncate(length),
      read: async (buf, position) => (await fh.read(buf, 0, buf.length, position)).bytesRead,
      close: () => fh.close(),
    };
  },
  unlink: (path) => unlink(path),
  syncDir: async (path) => {
    const fh = await open(path, "r");
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  },
};
