CREATE INDEX `flow_events_flow_kind` ON `flow_events` (`flow_id`,`kind`,`id`);--> statement-breakpoint
CREATE INDEX `resume_notifications_flow` ON `resume_notifications` (`flow_id`);