CREATE TABLE `event_inbox` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`topic` text NOT NULL,
	`correlation_id` text NOT NULL,
	`event_id` text,
	`payload_json` text,
	`received_at` integer NOT NULL,
	`expires_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `event_inbox_key` ON `event_inbox` (`topic`,`correlation_id`,`id`);--> statement-breakpoint
CREATE INDEX `event_inbox_expires` ON `event_inbox` (`expires_at`);--> statement-breakpoint
CREATE TABLE `flow_events` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`flow_id` text NOT NULL,
	`kind` text NOT NULL,
	`payload_json` text NOT NULL,
	`at` integer NOT NULL,
	FOREIGN KEY (`flow_id`) REFERENCES `flows`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `flow_events_flow` ON `flow_events` (`flow_id`,`id`);--> statement-breakpoint
CREATE TABLE `flow_steps` (
	`id` text PRIMARY KEY NOT NULL,
	`flow_id` text NOT NULL,
	`runtime` text NOT NULL,
	`child_session_key` text,
	`run_id` text NOT NULL,
	`task` text NOT NULL,
	`status` text NOT NULL,
	`result_json` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`flow_id`) REFERENCES `flows`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `flow_steps_flow_run` ON `flow_steps` (`flow_id`,`run_id`);--> statement-breakpoint
CREATE TABLE `flows` (
	`id` text PRIMARY KEY NOT NULL,
	`controller_id` text NOT NULL,
	`goal` text NOT NULL,
	`owner_session_key` text NOT NULL,
	`requester_origin` text,
	`current_step` text NOT NULL,
	`state_json` text NOT NULL,
	`wait_json` text,
	`status` text NOT NULL,
	`cancel_requested` integer DEFAULT 0 NOT NULL,
	`revision` integer NOT NULL,
	`idempotency_key` text,
	`wake_at` integer,
	`wait_topic` text,
	`wait_correlation_id` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `flows_status_wake_at` ON `flows` (`status`,`wake_at`);--> statement-breakpoint
CREATE INDEX `flows_status_topic_correlation` ON `flows` (`status`,`wait_topic`,`wait_correlation_id`);--> statement-breakpoint
CREATE INDEX `flows_owner_created` ON `flows` (`owner_session_key`,`created_at`);--> statement-breakpoint
CREATE INDEX `flows_status_updated` ON `flows` (`status`,`updated_at`);--> statement-breakpoint
CREATE UNIQUE INDEX `flows_owner_idempotency` ON `flows` (`owner_session_key`,`idempotency_key`);--> statement-breakpoint
CREATE TABLE `resume_notifications` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`flow_id` text NOT NULL,
	`wake_json` text NOT NULL,
	`due_at` integer NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`flow_id`) REFERENCES `flows`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `resume_notifications_due` ON `resume_notifications` (`due_at`);--> statement-breakpoint
CREATE TABLE `seen_events` (
	`event_id` text PRIMARY KEY NOT NULL,
	`expires_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `seen_events_expires` ON `seen_events` (`expires_at`);