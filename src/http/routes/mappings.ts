// A container's IOVA mappings (IOMMU_IOAS_MAP / IOMMU_IOAS_UNMAP): ranges
// only, no memory behind them. The rules are src/core/iova.ts's.
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { lookup } from "../../core/lookup.js";
import { mapIova, unmapMapping, unmapRange } from "../../core/iova.js";
import { fail, ok } from "../../core/result.js";
import { Id, IdParams, Page, PageQuery, problems, writeProblems } from "../schemas/common.js";
import { CreateMapping, Mapping, UnmapBody, Unmapped } from "../schemas/resources.js";
import { page, presentMapping, versionTag } from "../present.js";
import { resource } from "../preconditions.js";
import { callerOf, respond, respondRead } from "../respond.js";

const MappingParams = Type.Object({ id: Id, mappingId: Id }, { additionalProperties: false });

export const mappingRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post("/containers/:id/mappings", {
    config: { role: "client" },
    schema: { params: IdParams, body: CreateMapping, response: { 201: Mapping, ...writeProblems(403, 404, 507) } },
  }, (req, reply) => respond(reply, (m) => mapIova(m, callerOf(req), req.params.id, req.body, app.quotas), (_m, mapping) => presentMapping(mapping),
    { status: 201, etag: versionTag }));

  app.get("/containers/:id/mappings", {
    config: { role: "reader" }, schema: { params: IdParams, querystring: PageQuery, response: { 200: Page(Mapping), ...problems(404) } },
  }, (req, reply) => respondRead(reply, (m) => {
    const c = lookup(m, "container", req.params.id);
    return c.ok ? ok(page(m.mappingsOf(c.value.id), req.query, presentMapping, true)) : c;
  }));

  app.get("/containers/:id/mappings/:mappingId", {
    config: { role: "reader" }, schema: { params: MappingParams, response: { 200: Mapping, ...problems(404) } },
  }, (req, reply) => respondRead(reply, (m) => {
    const c = lookup(m, "container", req.params.id);
    if (!c.ok) return c;
    const mapping = lookup(m, "mapping", req.params.mappingId);
    if (mapping.ok && mapping.value.containerId !== c.value.id) {
      return fail("no-such-mapping", `mapping ${mapping.value.id} is not in container ${c.value.name}`, { containerId: c.value.id, mappingId: mapping.value.id });
    }
    return mapping.ok ? ok(presentMapping(mapping.value)) : mapping;
  }, { etag: versionTag }));

  app.delete("/containers/:id/mappings/:mappingId", {
    config: { role: "client" }, schema: { params: MappingParams, response: { 204: { type: "null" }, ...writeProblems(403, 404) } },
  }, (req, reply) => respond(reply, (m) => unmapMapping(m, callerOf(req), req.params.id, req.params.mappingId), () => null,
    { status: 204, target: resource("mapping", req.params.mappingId) }));

  // IOMMU_IOAS_UNMAP by range: every mapping inside it goes; a range that cuts one, or holds none, is ENOENT.
  app.post("/containers/:id/unmap", {
    config: { role: "client" }, schema: { params: IdParams, body: UnmapBody, response: { 200: Unmapped, ...writeProblems(403, 404) } },
  }, (req, reply) => respond(reply, (m) => {
    const { iova, length } = req.body;
    if ((iova === undefined) !== (length === undefined)) {
      return fail("invalid-argument", "name both iova and length, or neither to unmap everything", { containerId: req.params.id });
    }
    return unmapRange(m, callerOf(req), req.params.id, iova === undefined ? "all" : { iova, length: length! });
  }, (_m, r) => ({ unmapped: r.unmapped, mappings: r.mappings.map(presentMapping) })));
};
