-- A member's (or Twilio's) consent changes to a number take effect in the order Twilio delivered them, by
-- the time the opt-out edge received each webhook (consent_history.occurred_at), not in the order they are
-- applied: a STOP that waited in Kafka while a later START went to PostgreSQL directly must not suppress
-- the number once the START has lifted it. Such a change is still recorded, with superseded = true (and
-- changed = false): a later word from the member or Twilio had already been applied; it touched neither the
-- suppressions nor iMIS, and announced nothing.
ALTER TABLE consent_history ADD COLUMN superseded boolean NOT NULL DEFAULT false;
