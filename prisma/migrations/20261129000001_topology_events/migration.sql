-- AlterTable
ALTER TABLE "Event" ADD COLUMN "kind" TEXT;
ALTER TABLE "Event" ADD COLUMN "objectId" INTEGER;

