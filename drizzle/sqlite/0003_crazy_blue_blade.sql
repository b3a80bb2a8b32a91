CREATE TABLE `flow_wait_keys` (
	`flow_id` text NOT NULL,
	`topic` text NOT NULL,
	`correlation_id` text NOT NULL,
	PRIMARY KEY(`flow_id`, `topic`, `correlation_id`),
	FOREIGN KEY (`flow_id`) REFERENCES `flows`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `flow_wait_keys_key` ON `flow_wait_keys` (`topic`,`correlation_id`,`flow_id`);