// A device's reserved regions (what iommu_get_resv_regions reports: RMRRs,
// the MSI window, ...): part of the hardware's description, so administered
// like devices. The rules are src/core/iova.ts's.
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { addReservedRegion, removeReservedRegion } from "../../core/iova.js";
import { lookup } from "../../core/lookup.js";
import { fail, ok } from "../../core/result.js";
import { Id, IdParams, Page, PageQuery, problems, writeProblems } from "../schemas/common.js";
import { CreateReservedRegion, ReservedRegion } from "../schemas/resources.js";
import { page, presentRegion, versionTag } from "../present.js";
import { resource } from "../preconditions.js";
import { callerOf, respond, respondRead } from "../respond.js";

const RegionParams = Type.Object({ id: Id, regionId: Id }, { additionalProperties: false });

export const reservedRegionRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post("/devices/:id/reserved-regions", {
    config: { role: "admin" },
    schema: { params: IdParams, body: CreateReservedRegion, response: { 201: ReservedRegion, ...writeProblems(404) } },
  }, (req, reply) => respond(reply, (m) => addReservedRegion(m, callerOf(req), req.params.id, req.body), (_m, r) => presentRegion(r),
    { status: 201, etag: versionTag }));

  app.get("/devices/:id/reserved-regions", {
    config: { role: "reader" }, schema: { params: IdParams, querystring: PageQuery, response: { 200: Page(ReservedRegion), ...problems(404) } },
  }, (req, reply) => respondRead(reply, (m) => {
    const d = lookup(m, "device", req.params.id);
    return d.ok ? ok(page(m.regionsOf(d.value.id), req.query, presentRegion, true)) : d;
  }));

  app.get("/devices/:id/reserved-regions/:regionId", {
    config: { role: "reader" }, schema: { params: RegionParams, response: { 200: ReservedRegion, ...problems(404) } },
  }, (req, reply) => respondRead(reply, (m) => {
    const d = lookup(m, "device", req.params.id);
    if (!d.ok) return d;
    const region = lookup(m, "region", req.params.regionId);
    if (region.ok && region.value.deviceId !== d.value.id) {
      return fail("no-such-region", `region ${region.value.id} is not ${d.value.name}'s`, { deviceId: d.value.id, regionId: region.value.id });
    }
    return region.ok ? ok(presentRegion(region.value)) : region;
  }, { etag: versionTag }));

  app.delete("/devices/:id/reserved-regions/:regionId", {
    config: { role: "admin" }, schema: { params: RegionParams, response: { 204: { type: "null" }, ...writeProblems(404) } },
  }, (req, reply) => respond(reply, (m) => removeReservedRegion(m, callerOf(req), req.params.id, req.params.regionId), () => null,
    { status: 204, target: resource("region", req.params.regionId) }));
};
