-- Event ids are unique per topic. Ids seen before keep the topic '' (no event has it): seen on every topic until they expire.
CREATE TABLE `__new_seen_events` (
	`topic` text DEFAULT '' NOT NULL,
	`event_id` text NOT NULL,
	`expires_at` integer NOT NULL,
	PRIMARY KEY(`topic`, `event_id`)
);
--> statement-breakpoint
INSERT INTO `__new_seen_events`("topic", "event_id", "expires_at") SELECT '', "event_id", "expires_at" FROM `seen_events`;--> statement-breakpoint
DROP TABLE `seen_events`;--> statement-breakpoint
ALTER TABLE `__new_seen_events` RENAME TO `seen_events`;--> statement-breakpoint
CREATE INDEX `seen_events_expires` ON `seen_events` (`expires_at`);
