DROP INDEX `resume_notifications_due`;--> statement-breakpoint
ALTER TABLE `resume_notifications` ADD `last_error` text;--> statement-breakpoint
ALTER TABLE `resume_notifications` ADD `dead_at` integer;--> statement-breakpoint
CREATE INDEX `resume_notifications_flow` ON `resume_notifications` (`flow_id`);--> statement-breakpoint
CREATE INDEX `resume_notifications_due` ON `resume_notifications` (`dead_at`,`due_at`);