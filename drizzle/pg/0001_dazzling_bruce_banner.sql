DROP INDEX "resume_notifications_due";--> statement-breakpoint
ALTER TABLE "resume_notifications" ADD COLUMN "last_error" text;--> statement-breakpoint
ALTER TABLE "resume_notifications" ADD COLUMN "dead_at" bigint;--> statement-breakpoint
CREATE INDEX "resume_notifications_due" ON "resume_notifications" USING btree ("dead_at","due_at");