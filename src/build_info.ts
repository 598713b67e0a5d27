/**
 * Version and git commit of this build. scripts/build.ts rewrites this file while it compiles or
 * bundles and restores it afterwards, so released artifacts carry their real commit.
 */
export const BUILD_INFO: Readonly<{ version: string; sha: string }> = Object.freeze({
  version: "0.1.0",
  sha: "source",
});
