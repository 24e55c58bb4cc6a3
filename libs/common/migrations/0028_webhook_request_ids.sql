-- Webhooks are appended to Kafka (textpulse.webhooks) before Twilio gets its 200, and written here by the
-- opt-out service's intake consumer; when Kafka is unreachable the edge writes here directly. Each request
-- carries the id it was given on arrival, so a record delivered twice, or a request that reached both
-- paths (Kafka slow, then the direct write), is stored once (ON CONFLICT (request_id) DO NOTHING).
-- Rows stored before this migration have none. received_at is now set by the edge, not by the insert.
ALTER TABLE webhook_requests ADD COLUMN request_id uuid;
CREATE UNIQUE INDEX webhook_requests_request_id ON webhook_requests (request_id);
