/**
 * The gateway's admin credentials, kept where faasd keeps them: `<data-dir>/secrets/
 * basic-auth-user` and `basic-auth-password`. Created once; never overwritten.
 */

import { randomBytes } from "node:crypto";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";

/** The user name faasd writes on first start. */
export const DEFAULT_USER = "admin";

/** Basic-auth credentials for the gateway. */
export interface Credentials {
  user: string;
  password: string;
}

/** Paths of the two credential files under a data dir. */
export function credentialPaths(dataDir: string): { dir: string; user: string; password: string } {
  const dir = join(dataDir, "secrets");
  return { dir, user: join(dir, "basic-auth-user"), password: join(dir, "basic-auth-password") };
}

/**
 * Reads the credentials, creating whichever file is missing (`admin`, and a random 48-character
 * password). Existing files are never rewritten, so a password a user changed stays changed.
 */
export async function ensureCredentials(
  dataDir: string,
): Promise<Credentials & { created: boolean }> {
  const paths = credentialPaths(dataDir);
  await mkdir(paths.dir, { recursive: true, mode: 0o700 });
  await chmod(paths.dir, 0o700);
  const userCreated = await createIfMissing(paths.user, DEFAULT_USER);
  const passwordCreated = await createIfMissing(paths.password, randomPassword());
  return {
    user: (await readFile(paths.user, "utf8")).trim(),
    password: (await readFile(paths.password, "utf8")).trim(),
    created: userCreated || passwordCreated,
  };
}

/** A random password of URL-safe characters (288 bits). */
export function randomPassword(): string {
  return randomBytes(36).toString("base64url");
}

async function createIfMissing(path: string, value: string): Promise<boolean> {
  try {
    // "wx" fails when the file exists, so two processes starting at once cannot overwrite it.
    await writeFile(path, value, { flag: "wx", mode: 0o600 });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  }
}
