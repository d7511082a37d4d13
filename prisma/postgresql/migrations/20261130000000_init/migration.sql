-- CreateSchema
CREATE SCHEMA IF NOT EXISTS "public";

-- CreateTable
CREATE TABLE "Unit" (
    "id" INTEGER NOT NULL,
    "name" TEXT NOT NULL,
    "driver" TEXT NOT NULL,
    "capabilities" JSONB NOT NULL,
    "online" BOOLEAN NOT NULL DEFAULT true,

    CONSTRAINT "Unit_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Container" (
    "id" INTEGER NOT NULL,
    "name" TEXT NOT NULL,
    "kind" TEXT NOT NULL DEFAULT 'iommufd',
    "owner" TEXT,

    CONSTRAINT "Container_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Domain" (
    "id" INTEGER NOT NULL,
    "name" TEXT,
    "type" TEXT NOT NULL,
    "driver" TEXT NOT NULL,
    "unitId" INTEGER,
    "config" JSONB NOT NULL,
    "auto" BOOLEAN NOT NULL DEFAULT false,
    "search" TEXT NOT NULL DEFAULT 'none',
    "containerId" INTEGER,
    "owner" TEXT,

    CONSTRAINT "Domain_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Group" (
    "id" INTEGER NOT NULL,
    "name" TEXT NOT NULL,
    "unitId" INTEGER NOT NULL,
    "domainId" INTEGER NOT NULL,
    "defaultDomainId" INTEGER NOT NULL,
    "blockingDomainId" INTEGER,
    "owner" TEXT,

    CONSTRAINT "Group_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Device" (
    "id" INTEGER NOT NULL,
    "name" TEXT NOT NULL,
    "groupId" INTEGER NOT NULL,
    "flags" JSONB NOT NULL,
    "faulty" BOOLEAN NOT NULL DEFAULT false,
    "maxPasids" INTEGER NOT NULL DEFAULT 0,
    "hostDriver" TEXT,
    "strandedOnDomainId" INTEGER,

    CONSTRAINT "Device_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Fault" (
    "id" INTEGER NOT NULL,
    "unitId" INTEGER,
    "deviceId" INTEGER,
    "errno" TEXT NOT NULL,
    "remaining" INTEGER NOT NULL,

    CONSTRAINT "Fault_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "PasidAttachment" (
    "id" INTEGER NOT NULL,
    "deviceId" INTEGER NOT NULL,
    "pasid" INTEGER NOT NULL,
    "domainId" INTEGER NOT NULL,

    CONSTRAINT "PasidAttachment_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "IovaMapping" (
    "id" INTEGER NOT NULL,
    "containerId" INTEGER NOT NULL,
    "iova" BIGINT NOT NULL,
    "length" BIGINT NOT NULL,
    "owner" TEXT,

    CONSTRAINT "IovaMapping_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ReservedRegion" (
    "id" INTEGER NOT NULL,
    "deviceId" INTEGER NOT NULL,
    "start" BIGINT NOT NULL,
    "length" BIGINT NOT NULL,
    "type" TEXT NOT NULL,

    CONSTRAINT "ReservedRegion_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "IommufdDevice" (
    "id" INTEGER NOT NULL,
    "deviceId" INTEGER NOT NULL,
    "owner" TEXT NOT NULL,
    "domainId" INTEGER,

    CONSTRAINT "IommufdDevice_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Host" (
    "id" INTEGER NOT NULL,
    "kernelProfile" TEXT NOT NULL DEFAULT '6.5+',

    CONSTRAINT "Host_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Event" (
    "seq" BIGINT NOT NULL,
    "at" TIMESTAMP(3) NOT NULL,
    "op" TEXT NOT NULL,
    "owner" TEXT,
    "groupId" INTEGER,
    "deviceId" INTEGER,
    "domainId" INTEGER,
    "containerId" INTEGER,
    "errno" TEXT,
    "code" INTEGER NOT NULL,
    "reason" TEXT,
    "detail" TEXT,
    "kind" TEXT,
    "objectId" INTEGER,

    CONSTRAINT "Event_pkey" PRIMARY KEY ("seq")
);

-- CreateTable
CREATE TABLE "IdempotentAnswer" (
    "client" TEXT NOT NULL,
    "key" TEXT NOT NULL,
    "fingerprint" TEXT NOT NULL,
    "status" INTEGER NOT NULL,
    "contentType" TEXT NOT NULL,
    "headers" TEXT NOT NULL,
    "body" TEXT NOT NULL,
    "storedAt" BIGINT NOT NULL,

    CONSTRAINT "IdempotentAnswer_pkey" PRIMARY KEY ("client","key")
);

-- CreateTable
CREATE TABLE "Heartbeat" (
    "id" INTEGER NOT NULL,
    "at" BIGINT NOT NULL,

    CONSTRAINT "Heartbeat_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "IdWatermark" (
    "kind" TEXT NOT NULL,
    "last" BIGINT NOT NULL,

    CONSTRAINT "IdWatermark_pkey" PRIMARY KEY ("kind")
);

-- CreateTable
CREATE TABLE "ChangeLog" (
    "seq" BIGINT NOT NULL,
    "at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "body" TEXT NOT NULL,

    CONSTRAINT "ChangeLog_pkey" PRIMARY KEY ("seq")
);

-- CreateIndex
CREATE UNIQUE INDEX "Unit_name_key" ON "Unit"("name");

-- CreateIndex
CREATE UNIQUE INDEX "Container_name_key" ON "Container"("name");

-- CreateIndex
CREATE INDEX "Domain_unitId_idx" ON "Domain"("unitId");

-- CreateIndex
CREATE INDEX "Domain_containerId_idx" ON "Domain"("containerId");

-- CreateIndex
CREATE UNIQUE INDEX "Group_name_key" ON "Group"("name");

-- CreateIndex
CREATE INDEX "Group_unitId_idx" ON "Group"("unitId");

-- CreateIndex
CREATE INDEX "Group_domainId_idx" ON "Group"("domainId");

-- CreateIndex
CREATE UNIQUE INDEX "Device_name_key" ON "Device"("name");

-- CreateIndex
CREATE INDEX "Device_groupId_idx" ON "Device"("groupId");

-- CreateIndex
CREATE INDEX "Device_strandedOnDomainId_idx" ON "Device"("strandedOnDomainId");

-- CreateIndex
CREATE INDEX "PasidAttachment_deviceId_idx" ON "PasidAttachment"("deviceId");

-- CreateIndex
CREATE INDEX "PasidAttachment_domainId_idx" ON "PasidAttachment"("domainId");

-- CreateIndex
CREATE INDEX "IovaMapping_containerId_idx" ON "IovaMapping"("containerId");

-- CreateIndex
CREATE UNIQUE INDEX "IommufdDevice_deviceId_key" ON "IommufdDevice"("deviceId");

-- CreateIndex
CREATE INDEX "IommufdDevice_domainId_idx" ON "IommufdDevice"("domainId");

-- CreateIndex
CREATE INDEX "Event_groupId_idx" ON "Event"("groupId");

-- CreateIndex
CREATE INDEX "IdempotentAnswer_storedAt_idx" ON "IdempotentAnswer"("storedAt");

-- AddForeignKey
ALTER TABLE "Domain" ADD CONSTRAINT "Domain_unitId_fkey" FOREIGN KEY ("unitId") REFERENCES "Unit"("id") ON DELETE NO ACTION ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Domain" ADD CONSTRAINT "Domain_containerId_fkey" FOREIGN KEY ("containerId") REFERENCES "Container"("id") ON DELETE NO ACTION ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Group" ADD CONSTRAINT "Group_unitId_fkey" FOREIGN KEY ("unitId") REFERENCES "Unit"("id") ON DELETE NO ACTION ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Group" ADD CONSTRAINT "Group_domainId_fkey" FOREIGN KEY ("domainId") REFERENCES "Domain"("id") ON DELETE NO ACTION ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Group" ADD CONSTRAINT "Group_defaultDomainId_fkey" FOREIGN KEY ("defaultDomainId") REFERENCES "Domain"("id") ON DELETE NO ACTION ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Group" ADD CONSTRAINT "Group_blockingDomainId_fkey" FOREIGN KEY ("blockingDomainId") REFERENCES "Domain"("id") ON DELETE NO ACTION ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Device" ADD CONSTRAINT "Device_groupId_fkey" FOREIGN KEY ("groupId") REFERENCES "Group"("id") ON DELETE NO ACTION ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Device" ADD CONSTRAINT "Device_strandedOnDomainId_fkey" FOREIGN KEY ("strandedOnDomainId") REFERENCES "Domain"("id") ON DELETE NO ACTION ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Fault" ADD CONSTRAINT "Fault_unitId_fkey" FOREIGN KEY ("unitId") REFERENCES "Unit"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Fault" ADD CONSTRAINT "Fault_deviceId_fkey" FOREIGN KEY ("deviceId") REFERENCES "Device"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "PasidAttachment" ADD CONSTRAINT "PasidAttachment_deviceId_fkey" FOREIGN KEY ("deviceId") REFERENCES "Device"("id") ON DELETE NO ACTION ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "PasidAttachment" ADD CONSTRAINT "PasidAttachment_domainId_fkey" FOREIGN KEY ("domainId") REFERENCES "Domain"("id") ON DELETE NO ACTION ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "IovaMapping" ADD CONSTRAINT "IovaMapping_containerId_fkey" FOREIGN KEY ("containerId") REFERENCES "Container"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ReservedRegion" ADD CONSTRAINT "ReservedRegion_deviceId_fkey" FOREIGN KEY ("deviceId") REFERENCES "Device"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "IommufdDevice" ADD CONSTRAINT "IommufdDevice_deviceId_fkey" FOREIGN KEY ("deviceId") REFERENCES "Device"("id") ON DELETE NO ACTION ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "IommufdDevice" ADD CONSTRAINT "IommufdDevice_domainId_fkey" FOREIGN KEY ("domainId") REFERENCES "Domain"("id") ON DELETE NO ACTION ON UPDATE CASCADE;


-- Written by hand, not generated (Prisma cannot say DEFERRABLE): every
-- foreign key is checked at COMMIT, as the SQLite writer checks them
-- (PRAGMA defer_foreign_keys). One operation's rows are written deletes
-- first, so a domain may be deleted before the update that moves its last
-- group away; the schema for PostgreSQL says NO ACTION where SQLite's says
-- RESTRICT, since PostgreSQL never defers RESTRICT.
ALTER TABLE "Domain" ALTER CONSTRAINT "Domain_unitId_fkey" DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE "Domain" ALTER CONSTRAINT "Domain_containerId_fkey" DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE "Group" ALTER CONSTRAINT "Group_unitId_fkey" DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE "Group" ALTER CONSTRAINT "Group_domainId_fkey" DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE "Group" ALTER CONSTRAINT "Group_defaultDomainId_fkey" DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE "Group" ALTER CONSTRAINT "Group_blockingDomainId_fkey" DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE "Device" ALTER CONSTRAINT "Device_groupId_fkey" DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE "Device" ALTER CONSTRAINT "Device_strandedOnDomainId_fkey" DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE "Fault" ALTER CONSTRAINT "Fault_unitId_fkey" DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE "Fault" ALTER CONSTRAINT "Fault_deviceId_fkey" DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE "PasidAttachment" ALTER CONSTRAINT "PasidAttachment_deviceId_fkey" DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE "PasidAttachment" ALTER CONSTRAINT "PasidAttachment_domainId_fkey" DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE "IovaMapping" ALTER CONSTRAINT "IovaMapping_containerId_fkey" DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE "ReservedRegion" ALTER CONSTRAINT "ReservedRegion_deviceId_fkey" DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE "IommufdDevice" ALTER CONSTRAINT "IommufdDevice_deviceId_fkey" DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE "IommufdDevice" ALTER CONSTRAINT "IommufdDevice_domainId_fkey" DEFERRABLE INITIALLY DEFERRED;
