// What every command needs: the client built from the global options, and the printer.
import { Command, InvalidArgumentError } from "commander";
import { ArbiterClient } from "../client/index.js";
import { printer, type Printer } from "./output.js";

export const DEFAULT_URL = "http://127.0.0.1:3000";

export interface GlobalOptions {
  url: string;
  token?: string;
  json: boolean;
  timeout: number;
  retries: number;
}

export interface Context {
  readonly client: ArbiterClient;
  readonly out: Printer;
  /** Aborted on SIGINT/SIGTERM: a command in flight ends cleanly. */
  readonly signal: AbortSignal;
}

let stop: AbortController | null = null;

/** The client and printer for the command being run (options come from the root command). */
export function contextOf(command: Command): Context {
  const o = command.optsWithGlobals<GlobalOptions>();
  if (!stop) {
    stop = new AbortController();
    const controller = stop;
    for (const s of ["SIGINT", "SIGTERM"] as const) process.once(s, () => controller.abort());
  }
  const client = new ArbiterClient({
    baseUrl: o.url, timeoutMs: o.timeout, retry: { maxAttempts: o.retries + 1 },
    ...(o.token ? { token: o.token } : {}),
  });
  return { client, out: printer(o.json), signal: stop.signal };
}

/** The server's URL: http or https. */
export function serverUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError("must be a URL such as http://127.0.0.1:3000.");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new InvalidArgumentError("must be an http: or https: URL.");
  return value;
}

/** A positive integer id argument; anything else is a usage error (exit 2). */
export function id(value: string): number {
  if (!/^[1-9]\d*$/.test(value) || !Number.isSafeInteger(Number(value))) throw new InvalidArgumentError("must be a positive integer id.");
  return Number(value);
}

/** A non-negative integer option. */
export function count(value: string): number {
  if (!/^(0|[1-9]\d*)$/.test(value) || !Number.isSafeInteger(Number(value))) throw new InvalidArgumentError("must be a non-negative integer.");
  return Number(value);
}

/** Ids collected from a variadic argument. */
export function ids(value: string, previous: number[] = []): number[] {
  return [...previous, id(value)];
}

/** A JSON object option (e.g. --allocate '{"type":"paging","unitId":2}'). */
export function jsonObject(value: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new InvalidArgumentError("must be a JSON object.");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new InvalidArgumentError("must be a JSON object.");
  return parsed as Record<string, unknown>;
}
