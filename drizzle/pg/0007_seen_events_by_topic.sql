-- Event ids are unique per topic. Ids seen before keep the topic '' (no event has it): seen on every topic until they expire.
ALTER TABLE "seen_events" ADD COLUMN "topic" text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE "seen_events" DROP CONSTRAINT "seen_events_pkey";--> statement-breakpoint
ALTER TABLE "seen_events" ADD CONSTRAINT "seen_events_topic_event_id_pk" PRIMARY KEY("topic","event_id");
