/**
 * Docker-style image references, parsed and normalised the way containerd's reference/docker
 * (distribution's reference package) does: `nginx` is `docker.io/library/nginx:latest`.
 */

import { InvalidArgumentError } from "../errors.ts";

/** A parsed, normalised image reference. */
export interface ImageReference {
  /** The reference exactly as given. */
  original: string;
  /** Registry host with optional port, e.g. `docker.io` or `localhost:5000`. */
  domain: string;
  /** Repository path inside the registry, e.g. `library/nginx`. */
  path: string;
  tag?: string;
  digest?: string;
  /** `domain/path`. */
  repository: string;
  /** The name of the containerd image record: `domain/path:tag`, `…@digest` or `…:tag@digest`. */
  name: string;
}

const DEFAULT_DOMAIN = "docker.io";
const LEGACY_DEFAULT_DOMAIN = "index.docker.io";
const OFFICIAL_PREFIX = "library/";
const DEFAULT_TAG = "latest";
const NAME_TOTAL_LENGTH_MAX = 255;

// The grammar of distribution/reference (reference.go, regexp.go).
const DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const DOMAIN_RE = new RegExp(
  `^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?$`,
);
const PATH_COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const DIGEST_RE = /^(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
const IDENTIFIER_RE = /^[a-f0-9]{64}$/;

/** Parses and normalises an image reference; throws InvalidArgumentError saying what is wrong. */
export function parseReference(s: string): ImageReference {
  const fail = (why: string): never => {
    throw new InvalidArgumentError(`invalid image reference "${s}": ${why}`);
  };
  if (s === "") fail("it is empty");
  if (IDENTIFIER_RE.test(s)) fail("a 64-character hex string is an image ID, not a reference");

  let rest = s;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST_RE.test(digest)) {
      fail(`digest "${digest}" must be sha256:<64 hex digits> or sha512:<128 hex digits>`);
    }
  }

  let tag: string | undefined;
  const colon = rest.lastIndexOf(":");
  if (colon > rest.lastIndexOf("/")) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) {
      fail(
        `tag "${tag}" must be 1 to 128 letters, digits, "_", "." or "-", not starting with "." or "-"`,
      );
    }
  }

  const { domain, path } = splitDomain(rest);
  if (domain === "" || !DOMAIN_RE.test(domain)) fail(`registry host "${domain}" is not valid`);
  if (path === "") fail("the repository name is empty");
  if (path.toLowerCase() !== path) fail(`repository name "${path}" must be lowercase`);
  for (const component of path.split("/")) {
    if (!PATH_COMPONENT_RE.test(component)) {
      fail(
        `repository path component "${component}" must be lowercase letters and digits separated by ".", "_", "__" or dashes`,
      );
    }
  }
  const repository = `${domain}/${path}`;
  if (repository.length > NAME_TOTAL_LENGTH_MAX) {
    fail(`the name is longer than ${NAME_TOTAL_LENGTH_MAX} characters`);
  }

  if (tag === undefined && digest === undefined) tag = DEFAULT_TAG;
  const name = repository + (tag !== undefined ? `:${tag}` : "") + (digest ? `@${digest}` : "");
  const ref: ImageReference = { original: s, domain, path, repository, name };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

/** The host that serves the registry API for a reference's domain (Docker Hub's differs). */
export function apiHost(domain: string): string {
  return domain === DEFAULT_DOMAIN || domain === LEGACY_DEFAULT_DOMAIN
    ? "registry-1.docker.io"
    : domain;
}

// distribution's splitDockerDomain: the first component is a registry host only when it looks
// like one (has "." or ":", is "localhost", or has uppercase letters, which paths never have).
function splitDomain(name: string): { domain: string; path: string } {
  const slash = name.indexOf("/");
  const first = slash < 0 ? "" : name.slice(0, slash);
  let domain: string;
  let path: string;
  if (
    slash < 0 ||
    (!/[.:]/.test(first) && first !== "localhost" && first.toLowerCase() === first)
  ) {
    domain = DEFAULT_DOMAIN;
    path = name;
  } else {
    domain = first;
    path = name.slice(slash + 1);
  }
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && path !== "" && !path.includes("/")) {
    path = OFFICIAL_PREFIX + path;
  }
  return { domain, path };
}
