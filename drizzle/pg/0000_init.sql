CREATE TABLE "event_inbox" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"topic" text NOT NULL,
	"correlation_id" text NOT NULL,
	"event_id" text,
	"payload_json" text,
	"received_at" bigint NOT NULL,
	"expires_at" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "flow_events" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"flow_id" text NOT NULL,
	"kind" text NOT NULL,
	"payload_json" text NOT NULL,
	"at" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "flow_steps" (
	"id" text PRIMARY KEY NOT NULL,
	"flow_id" text NOT NULL,
	"runtime" text NOT NULL,
	"child_session_key" text,
	"run_id" text NOT NULL,
	"task" text NOT NULL,
	"status" text NOT NULL,
	"result_json" text,
	"created_at" bigint NOT NULL,
	"updated_at" bigint NOT NULL,
	"seq" bigserial NOT NULL
);
--> statement-breakpoint
CREATE TABLE "flows" (
	"id" text PRIMARY KEY NOT NULL,
	"controller_id" text NOT NULL,
	"goal" text NOT NULL,
	"owner_session_key" text NOT NULL,
	"requester_origin" text,
	"current_step" text NOT NULL,
	"state_json" text NOT NULL,
	"wait_json" text,
	"status" text NOT NULL,
	"cancel_requested" integer DEFAULT 0 NOT NULL,
	"revision" integer NOT NULL,
	"idempotency_key" text,
	"wake_at" bigint,
	"wait_topic" text,
	"wait_correlation_id" text,
	"created_at" bigint NOT NULL,
	"updated_at" bigint NOT NULL,
	"seq" bigserial NOT NULL
);
--> statement-breakpoint
CREATE TABLE "resume_notifications" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"flow_id" text NOT NULL,
	"wake_json" text NOT NULL,
	"due_at" bigint NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"created_at" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "seen_events" (
	"event_id" text PRIMARY KEY NOT NULL,
	"expires_at" bigint NOT NULL
);
--> statement-breakpoint
ALTER TABLE "flow_events" ADD CONSTRAINT "flow_events_flow_id_flows_id_fk" FOREIGN KEY ("flow_id") REFERENCES "public"."flows"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "flow_steps" ADD CONSTRAINT "flow_steps_flow_id_flows_id_fk" FOREIGN KEY ("flow_id") REFERENCES "public"."flows"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "resume_notifications" ADD CONSTRAINT "resume_notifications_flow_id_flows_id_fk" FOREIGN KEY ("flow_id") REFERENCES "public"."flows"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "event_inbox_key" ON "event_inbox" USING btree ("topic","correlation_id","id");--> statement-breakpoint
CREATE INDEX "event_inbox_expires" ON "event_inbox" USING btree ("expires_at");--> statement-breakpoint
CREATE INDEX "flow_events_flow" ON "flow_events" USING btree ("flow_id","id");--> statement-breakpoint
CREATE UNIQUE INDEX "flow_steps_flow_run" ON "flow_steps" USING btree ("flow_id","run_id");--> statement-breakpoint
CREATE INDEX "flows_status_wake_at" ON "flows" USING btree ("status","wake_at");--> statement-breakpoint
CREATE INDEX "flows_status_topic_correlation" ON "flows" USING btree ("status","wait_topic","wait_correlation_id");--> statement-breakpoint
CREATE INDEX "flows_owner_created" ON "flows" USING btree ("owner_session_key","created_at");--> statement-breakpoint
CREATE INDEX "flows_status_updated" ON "flows" USING btree ("status","updated_at");--> statement-breakpoint
CREATE UNIQUE INDEX "flows_owner_idempotency" ON "flows" USING btree ("owner_session_key","idempotency_key");--> statement-breakpoint
CREATE INDEX "resume_notifications_due" ON "resume_notifications" USING btree ("due_at");--> statement-breakpoint
CREATE INDEX "resume_notifications_flow" ON "resume_notifications" USING btree ("flow_id");--> statement-breakpoint
CREATE INDEX "seen_events_expires" ON "seen_events" USING btree ("expires_at");