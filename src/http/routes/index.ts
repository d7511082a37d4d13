// Every /v1 resource, one plugin each.
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { containerRoutes } from "./containers.js";
import { deviceRoutes } from "./devices.js";
import { domainRoutes } from "./domains.js";
import { eventRoutes } from "./events.js";
import { faultRoutes } from "./faults.js";
import { groupRoutes } from "./groups.js";
import { mappingRoutes } from "./mappings.js";
import { reservedRegionRoutes } from "./reserved-regions.js";
import { iommufdRoutes } from "./iommufd.js";
import { hostRoutes } from "./host.js";
import { unitRoutes } from "./units.js";

export const Stats = Type.Object({
  batches: Type.Integer({ description: "Group-commit batches written" }),
  items: Type.Integer({ description: "Operations with changes written" }),
  largestBatch: Type.Integer(),
  checkpoints: Type.Integer({ description: "WAL checkpoints run by the background checkpointer" }),
  framesCheckpointed: Type.Integer({ description: "WAL frames those checkpoints copied into the database file" }),
  objects: Type.Record(Type.String(), Type.Integer()),
});

export const routes: FastifyPluginAsyncTypebox = async (app) => {
  await app.register(unitRoutes);
  await app.register(groupRoutes);
  await app.register(deviceRoutes);
  await app.register(iommufdRoutes);
  await app.register(domainRoutes);
  await app.register(containerRoutes);
  await app.register(mappingRoutes);
  await app.register(reservedRegionRoutes);
  await app.register(faultRoutes);
  await app.register(eventRoutes);
  await app.register(hostRoutes);
  app.get("/stats", { config: { role: "reader" }, schema: { response: { 200: Stats } } }, async () => app.store.stats());
};
