/**
 * Where `faasd install` puts things on a host, under a root that is `/` on a real host and a
 * staging directory for tests and packaging (`--root`).
 */

import { join } from "node:path";

/** The absolute host paths install writes (as seen by the host, without the staging root). */
export const HOST_PATHS = Object.freeze({
  /** The faasd program (a binary, a launcher script, or a link to the armhf launcher). */
  binary: "/usr/local/bin/faasd",
  /** Where the armhf Node.js bundle and its launcher are kept; `binary` links to the launcher. */
  libDir: "/usr/local/lib/faasd",
  unitDir: "/etc/systemd/system",
  sysctl: "/etc/sysctl.d/90-faasd.conf",
  /** Optional settings for the units (FAASD_* variables), never written by install. */
  environment: "/etc/default/faasd",
});

/** The systemd units install renders. */
export const UNIT_NAMES = Object.freeze({
  up: "faasd.service",
  provider: "faasd-provider.service",
});

/** The host paths install touches, joined to a staging root. */
export interface HostLayout {
  root: string;
  binary: string;
  libDir: string;
  unitDir: string;
  sysctl: string;
  dataDir: string;
  unit(name: string): string;
}

/** Joins the host paths and `dataDir` to `root` (`/` for the real host). */
export function hostLayout(root: string, dataDir: string): HostLayout {
  const at = (p: string) => (root === "/" ? p : join(root, p));
  return {
    root,
    binary: at(HOST_PATHS.binary),
    libDir: at(HOST_PATHS.libDir),
    unitDir: at(HOST_PATHS.unitDir),
    sysctl: at(HOST_PATHS.sysctl),
    dataDir: at(dataDir),
    unit: (name) => at(join(HOST_PATHS.unitDir, name)),
  };
}
