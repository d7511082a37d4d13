// The listen address, checked before the database is touched, and every way
// listening can fail said in one sentence.
import { lookup } from "node:dns/promises";
import net from "node:net";

/** The service cannot listen where it was told to. */
export class ListenError extends Error {}

const UNRESOLVED = new Set(["ENOTFOUND", "EAI_AGAIN", "EAI_NONAME", "EAI_FAIL", "EAI_NODATA"]);

export function listenError(host: string, port: number, error: unknown): ListenError {
  const code = String((error as NodeJS.ErrnoException).code ?? "");
  if (code === "EADDRINUSE") return new ListenError(`port ${port} on ${host} is already in use`);
  if (code === "EADDRNOTAVAIL") return new ListenError(`host ${host} is not an address of this machine`);
  if (code === "EACCES" || code === "EPERM") return new ListenError(`not permitted to listen on port ${port} of ${host}`);
  if (UNRESOLVED.has(code)) return new ListenError(`host ${host} does not resolve to an address (${code})`);
  return new ListenError(`cannot listen on ${host}:${port}: ${(error as Error).message}`);
}

/**
 * Resolves the host and binds its address and the port once, letting go at
 * once, so that a bad host or a taken port is refused before the database
 * is opened, migrated or given its preset. The real listen can still lose a
 * race for the port; its error is mapped the same way.
 */
export async function checkListenAddress(host: string, port: number): Promise<void> {
  let address: string;
  try {
    ({ address } = await lookup(host));
  } catch (error) {
    throw listenError(host, port, error);
  }
  await new Promise<void>((resolve, reject) => {
    const probe = net.createServer();
    probe.once("error", (error) => reject(listenError(host, port, error)));
    probe.listen({ host: address, port }, () => probe.close(() => resolve()));
  });
}
