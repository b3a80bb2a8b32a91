CREATE TABLE "flow_wait_keys" (
	"flow_id" text NOT NULL,
	"topic" text NOT NULL,
	"correlation_id" text NOT NULL,
	CONSTRAINT "flow_wait_keys_flow_id_topic_correlation_id_pk" PRIMARY KEY("flow_id","topic","correlation_id")
);
--> statement-breakpoint
ALTER TABLE "flow_wait_keys" ADD CONSTRAINT "flow_wait_keys_flow_id_flows_id_fk" FOREIGN KEY ("flow_id") REFERENCES "public"."flows"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "flow_wait_keys_key" ON "flow_wait_keys" USING btree ("topic","correlation_id","flow_id");