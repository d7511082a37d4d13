// A minimal keep-alive JSON client for sequential requests (set-up calls and
// the one-connection latency measurements), timing each request with
// performance.now() from write to last byte.
import http from "node:http";
import { performance } from "node:perf_hooks";

export interface Reply<T = unknown> {
  readonly status: number;
  readonly body: T;
  /** Round trip, ms. */
  readonly ms: number;
}

export class JsonClient {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  private readonly host: string;
  private readonly port: number;

  constructor(baseUrl: string) {
    const u = new URL(baseUrl);
    this.host = u.hostname;
    this.port = Number(u.port);
  }

  request<T = unknown>(method: string, path: string, body?: unknown): Promise<Reply<T>> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const started = performance.now();
      const req = http.request({
        host: this.host, port: this.port, method, path, agent: this.agent,
        headers: payload ? { "content-type": "application/json", "content-length": payload.length } : {},
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const ms = performance.now() - started;
          const text = Buffer.concat(chunks).toString();
          let parsed: unknown = text;
          try {
            parsed = text.length > 0 ? JSON.parse(text) : null;
          } catch {
            // keep the text
          }
          resolve({ status: res.statusCode ?? 0, body: parsed as T, ms });
        });
        res.on("error", reject);
      });
      req.on("error", reject);
      req.end(payload);
    });
  }

  get<T = unknown>(path: string): Promise<Reply<T>> {
    return this.request<T>("GET", path);
  }

  post<T = unknown>(path: string, body: unknown): Promise<Reply<T>> {
    return this.request<T>("POST", path, body);
  }

  /** POST that must answer `status` (default 2xx); returns the body. */
  async must<T = unknown>(path: string, body: unknown, status?: number): Promise<T> {
    const r = await this.post<T>(path, body);
    const okay = status === undefined ? r.status >= 200 && r.status < 300 : r.status === status;
    if (!okay) throw new Error(`POST ${path} ${JSON.stringify(body)} answered ${r.status}: ${JSON.stringify(r.body)}`);
    return r.body;
  }

  close(): void {
    this.agent.destroy();
  }
}
