-- CreateTable
CREATE TABLE "IovaMapping" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "containerId" INTEGER NOT NULL,
    "iova" BIGINT NOT NULL,
    "length" BIGINT NOT NULL,
    "owner" TEXT,
    CONSTRAINT "IovaMapping_containerId_fkey" FOREIGN KEY ("containerId") REFERENCES "Container" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "ReservedRegion" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "deviceId" INTEGER NOT NULL,
    "start" BIGINT NOT NULL,
    "length" BIGINT NOT NULL,
    "type" TEXT NOT NULL,
    CONSTRAINT "ReservedRegion_deviceId_fkey" FOREIGN KEY ("deviceId") REFERENCES "Device" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateIndex
CREATE INDEX "IovaMapping_containerId_idx" ON "IovaMapping"("containerId");
