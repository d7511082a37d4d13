// The bearer-token table: who may call the service and in which role. The
// file holds SHA-256 digests of the tokens, never the tokens, so reading it
// (or a backup of it) does not let anyone in. See README "Identities and roles".
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { BlockList, isIP } from "node:net";
import { Type, type Static } from "@sinclair/typebox";
import { Ajv } from "ajv";
import { ConfigError } from "../config.js";

/** Lowest to highest: each role may do what the ones before it may. */
export const ROLES = ["reader", "client", "admin"] as const;
export type Role = (typeof ROLES)[number];

export interface Identity {
  readonly name: string;
  readonly role: Role;
}

const ClientName = Type.String({ pattern: "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$" });
const TokenEntry = Type.Object({
  name: ClientName,
  role: Type.String(),
  sha256: Type.String(),
}, { additionalProperties: false });
export const TokenFile = Type.Object({ tokens: Type.Array(TokenEntry) }, { additionalProperties: false });
export type TokenFile = Static<typeof TokenFile>;

const validateFile = new Ajv({ strict: false, allErrors: false }).compile<TokenFile>(TokenFile);

export function hashToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

/** A fresh token: 32 random bytes, base64url (a valid RFC 6750 token68). */
export function newToken(): string {
  return `iat_${randomBytes(32).toString("base64url")}`;
}

/**
 * A fresh token for a client and its token-file entry (the token's digest,
 * never the token). The entry is checked by the same parser as the file.
 */
export function makeTokenEntry(name: string, role: string): { token: string; entry: TokenFile["tokens"][number] } {
  const token = newToken();
  const entry = { name, role, sha256: hashToken(token) };
  parseTokenTable(JSON.stringify({ tokens: [entry] }), "the new entry");
  return { token, entry };
}

export class TokenTable {
  private readonly entries: readonly { readonly digest: Buffer; readonly identity: Identity }[];

  constructor(file: TokenFile) {
    this.entries = file.tokens.map((t) => ({
      digest: Buffer.from(t.sha256, "hex"),
      identity: Object.freeze({ name: t.name, role: t.role as Role }),
    }));
  }

  get size(): number {
    return this.entries.length;
  }

  /**
   * The identity a token proves, or null. Every entry is compared, in
   * constant time, whatever matched before: how long this takes says
   * nothing about which entry (if any) a token is close to.
   */
  identify(token: string): Identity | null {
    const digest = createHash("sha256").update(token, "utf8").digest();
    let found: Identity | null = null;
    for (const entry of this.entries) {
      const same = timingSafeEqual(digest, entry.digest);
      found = same ? entry.identity : found;
    }
    return found;
  }
}

/** Parses and strictly validates a token table; any problem is a one-line ConfigError. */
export function parseTokenTable(text: string, source: string): TokenTable {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`${source} is not JSON: ${(error as Error).message}`);
  }
  if (!validateFile(parsed)) {
    const e = validateFile.errors![0]!;
    const extra = (e.params as { additionalProperty?: string }).additionalProperty;
    const where = `${e.instancePath || "/"}${extra ? `/${extra}` : ""}`;
    const message = extra ? "is not a known field" : e.keyword === "pattern" ? "must be 1-64 letters, digits, '.', '_' or '-'" : e.message ?? "is invalid";
    throw new ConfigError(`${source}: ${where} ${message} (expected {"tokens": [{"name", "role", "sha256"}]})`);
  }
  const names = new Set<string>();
  const digests = new Set<string>();
  parsed.tokens.forEach((t, i) => {
    const at = `${source}: /tokens/${i}`;
    if (!(ROLES as readonly string[]).includes(t.role)) throw new ConfigError(`${at}/role "${t.role}" is not one of ${ROLES.join(", ")}`);
    if (!/^[0-9a-f]{64}$/.test(t.sha256)) throw new ConfigError(`${at}/sha256 must be 64 lowercase hex digits (the SHA-256 of the token)`);
    if (names.has(t.name)) throw new ConfigError(`${at}/name "${t.name}" appears twice`);
    if (digests.has(t.sha256)) throw new ConfigError(`${at}/sha256 repeats an earlier entry's: two clients would share a token`);
    names.add(t.name);
    digests.add(t.sha256);
  });
  if (parsed.tokens.length === 0) throw new ConfigError(`${source} lists no tokens: nobody could call the service (remove it for open mode)`);
  return new TokenTable(parsed);
}

/** The configured table (a file or the TOKENS variable), or null: open development mode. */
export function loadTokens(settings: { readonly tokensFile: string | null; readonly tokensJson: string | null }): TokenTable | null {
  const { tokensFile, tokensJson } = settings;
  if (tokensFile !== null && tokensJson !== null) throw new ConfigError("give the token table once: --tokens FILE (TOKENS_FILE) or TOKENS, not both");
  if (tokensJson !== null) return parseTokenTable(tokensJson, "TOKENS");
  if (tokensFile === null) return null;
  let text: string;
  try {
    text = readFileSync(tokensFile, "utf8");
  } catch (error) {
    throw new ConfigError(`cannot read token file ${tokensFile}: ${(error as Error).message}`);
  }
  return parseTokenTable(text, `token file ${tokensFile}`);
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet("127.0.0.0", 8, "ipv4");
LOOPBACK.addAddress("::1", "ipv6");

/** 127.0.0.0/8, ::1 or localhost: only this machine can connect. */
export function isLoopbackHost(host: string): boolean {
  if (host === "localhost") return true;
  const family = isIP(host);
  if (family === 4) return LOOPBACK.check(host, "ipv4");
  if (family === 6) return LOOPBACK.check(host, "ipv6");
  return false;
}

/** Without tokens anyone who can connect is an administrator: only this machine may. */
export function refuseOpenNonLoopback(host: string, tokens: TokenTable | null): void {
  if (tokens === null && !isLoopbackHost(host)) {
    throw new ConfigError(`refusing to listen on ${host} without bearer tokens (open mode is for loopback only); configure --tokens FILE or TOKENS, or listen on 127.0.0.1`);
  }
}
