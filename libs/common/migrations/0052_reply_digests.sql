-- E-mail digests of members' replies to each campaign's contact (issue 27; services/usage/reply_digests.py).
-- reply_digests_since: when the organisation turned the digests on (NULL: off); replies from before are
-- never e-mailed. A reply is marked digested in the transaction that queues its e-mail, and one digest per
-- campaign and window (reply_digests' key) is all a window gets, so a restart or a second watcher sends
-- no batch twice.
ALTER TABLE organisations ADD COLUMN reply_digests_since timestamptz;
ALTER TABLE inbound_messages ADD COLUMN reply_digested_at timestamptz;
CREATE INDEX inbound_messages_to_digest ON inbound_messages (org_id, received_at)
    WHERE kind = 'other' AND reply_digested_at IS NULL AND run_id IS NOT NULL;

CREATE TABLE reply_digests (
    campaign_id  uuid NOT NULL REFERENCES campaigns ON DELETE CASCADE,
    window_start timestamptz NOT NULL,
    org_id       uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    replies      integer NOT NULL CHECK (replies > 0),
    alert_id     bigint REFERENCES alerts ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign_id, window_start)
);
