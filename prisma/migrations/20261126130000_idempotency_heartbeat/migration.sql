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

    PRIMARY KEY ("client", "key")
);

-- CreateTable
CREATE TABLE "Heartbeat" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "at" BIGINT NOT NULL
);

-- CreateIndex
CREATE INDEX "IdempotentAnswer_storedAt_idx" ON "IdempotentAnswer"("storedAt");

