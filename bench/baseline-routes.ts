// The routes both baselines serve (the raw better-sqlite3 one and the raw
// pg one): GET /healthz and POST /v1/groups/:id/attach and /detach, with the
// same schemas and answers, around each one's own `move`.
import type { FastifyInstance } from "fastify";

export interface GroupAnswer {
  id: number; name: string; unitId: number; domainId: number; defaultDomainId: number;
  blockingDomainId: number | null; owner: string | null;
}

export type Outcome = { ok: true; group: GroupAnswer } | { ok: false; status: number; errno: string; reason: string; detail: string };

export type Move = (op: "attach" | "detach", groupId: number, domainId: number) => Outcome | Promise<Outcome>;

const Params = { type: "object", properties: { id: { type: "integer", minimum: 1 } }, required: ["id"], additionalProperties: false } as const;
const Body = { type: "object", properties: { domainId: { type: "integer", minimum: 1 } }, required: ["domainId"], additionalProperties: false } as const;
const Group = {
  type: "object",
  properties: {
    id: { type: "integer" }, name: { type: "string" }, unitId: { type: "integer" }, domainId: { type: "integer" },
    defaultDomainId: { type: "integer" }, blockingDomainId: { type: ["integer", "null"] }, owner: { type: ["string", "null"] },
  },
} as const;

export function baselineRoutes(app: FastifyInstance, move: Move): void {
  app.get("/healthz", async () => ({ status: "ok" }));
  for (const op of ["attach", "detach"] as const) {
    app.post<{ Params: { id: number }; Body: { domainId: number } }>(`/v1/groups/:id/${op}`,
      { schema: { params: Params, body: Body, response: { 200: Group } } },
      async (req, reply) => {
        const r = await move(op, req.params.id, req.body.domainId);
        if (r.ok) return r.group;
        return reply.code(r.status).type("application/problem+json")
          .send({ status: r.status, errno: r.errno, reason: r.reason, detail: r.detail });
      });
  }
}
