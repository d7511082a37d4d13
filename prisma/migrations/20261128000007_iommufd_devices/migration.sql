-- CreateTable
CREATE TABLE "IommufdDevice" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "deviceId" INTEGER NOT NULL,
    "owner" TEXT NOT NULL,
    "domainId" INTEGER,
    CONSTRAINT "IommufdDevice_deviceId_fkey" FOREIGN KEY ("deviceId") REFERENCES "Device" ("id") ON DELETE RESTRICT ON UPDATE CASCADE,
    CONSTRAINT "IommufdDevice_domainId_fkey" FOREIGN KEY ("domainId") REFERENCES "Domain" ("id") ON DELETE RESTRICT ON UPDATE CASCADE
);

-- CreateIndex
CREATE UNIQUE INDEX "IommufdDevice_deviceId_key" ON "IommufdDevice"("deviceId");

-- CreateIndex
CREATE INDEX "IommufdDevice_domainId_idx" ON "IommufdDevice"("domainId");


-- Data step, written by hand after the generated statements above: unit
-- capabilities gain isolatedMsi (the MSIs behind the unit are isolated,
-- iommu_group_has_isolated_msi). A unit stored before has none and takes
-- its driver's default, as a unit created without it does
-- (src/drivers/*.ts: interrupt remapping on VT-d and AMD-Vi, a GICv3 ITS
-- behind SMMUv3, the iommufd mock, which the kernel never asks).
UPDATE "Unit"
SET "capabilities" = json_set("capabilities", '$.isolatedMsi',
  json(CASE "driver" WHEN 'intel-vtd' THEN 'true' WHEN 'amd-iommu' THEN 'true' WHEN 'arm-smmu-v3' THEN 'true' WHEN 'mock' THEN 'true' ELSE 'false' END))
WHERE json_type("capabilities", '$.isolatedMsi') IS NULL;
