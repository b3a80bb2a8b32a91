CREATE TABLE "runtime_heartbeats" (
	"id" text PRIMARY KEY NOT NULL,
	"host" text NOT NULL,
	"started_at" bigint NOT NULL,
	"beat_at" bigint NOT NULL,
	"bridge_json" text
);
--> statement-breakpoint
CREATE INDEX "runtime_heartbeats_beat_at" ON "runtime_heartbeats" USING btree ("beat_at");