// An app with a bearer-token table: one admin, two clients and a reader, each
// with a fresh token, and a typed client per identity over inject.
import { rmSync } from "node:fs";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll } from "vitest";
import type { Quotas } from "../../src/core/quota.js";
import { buildApp } from "../../src/http/app.js";
import { makeTokenEntry, parseTokenTable } from "../../src/http/tokens.js";
import { SqliteStore } from "../../src/store/store.js";
import { MIGRATIONS, tempDbFile } from "./app.js";
import { Client, type Method, type Res } from "./http.js";
import { DRIVERS } from "../../src/drivers/index.js";

export const IDENTITIES = { admin: "ops", a: "vmm-a", b: "vmm-b", reader: "dashboard" } as const;
export type Who = keyof typeof IDENTITIES;
const ROLE: Record<Who, string> = { admin: "admin", a: "client", b: "client", reader: "reader" };

/** A Client that sends one bearer token (or the given Authorization header) with every request. */
export class TokenClient extends Client {
  constructor(target: () => FastifyInstance, private readonly authorization: string | null) {
    super(target);
  }
  override send<T = unknown>(method: Method, url: string, body?: unknown, headers: Record<string, string> = {}): Promise<Res<T>> {
    return super.send<T>(method, url, body, this.authorization === null ? headers : { authorization: this.authorization, ...headers });
  }
}

export interface AuthFixture {
  readonly as: Record<Who, TokenClient>;
  /** No Authorization header at all. */
  readonly anonymous: TokenClient;
  /** The tokens handed out, to check no answer ever shows one. */
  readonly tokens: Record<Who, string>;
  readonly digests: Record<Who, string>;
  readonly app: () => FastifyInstance;
  /** A client with any Authorization header. */
  withHeader(authorization: string): TokenClient;
}

/** An app with tokens for the whole test file (built in beforeAll, closed in afterAll). */
export function authAppForFile(quotas?: Quotas): AuthFixture {
  const tokens = {} as Record<Who, string>;
  const digests = {} as Record<Who, string>;
  const entries = (Object.keys(IDENTITIES) as Who[]).map((who) => {
    const made = makeTokenEntry(IDENTITIES[who], ROLE[who]);
    tokens[who] = made.token;
    digests[who] = made.entry.sha256;
    return made.entry;
  });
  let app: FastifyInstance | undefined;
  const db = tempDbFile();
  beforeAll(async () => {
    const store = await SqliteStore.open({ drivers: DRIVERS, file: db.file, migrationsDir: MIGRATIONS });
    app = await buildApp({ store, logger: false, tokens: parseTokenTable(JSON.stringify({ tokens: entries }), "test tokens"), ...(quotas ? { quotas } : {}) });
    app.addHook("onClose", () => store.close());
    await app.ready();
  });
  afterAll(async () => {
    await app?.close();
    rmSync(db.dir, { recursive: true, force: true });
  });
  const target = () => {
    if (!app) throw new Error("the app is built in beforeAll");
    return app;
  };
  const as = {} as Record<Who, TokenClient>;
  for (const who of Object.keys(IDENTITIES) as Who[]) as[who] = new TokenClient(target, `Bearer ${tokens[who]}`);
  return {
    as, tokens, digests, app: target,
    anonymous: new TokenClient(target, null),
    withHeader: (authorization) => new TokenClient(target, authorization),
  };
}
