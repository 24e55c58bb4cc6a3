-- Toll-free verification of each sender as Twilio's Tollfree Verifications API last reported it (issue 24),
-- refreshed on a schedule and on demand, and the form last submitted for it (to prefill a resubmission).
-- senders.verification stays the state sending is checked against; a refresh updates both together.
CREATE TABLE sender_verifications (
    sender_id         uuid PRIMARY KEY REFERENCES senders ON DELETE CASCADE,
    org_id            uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    verification_sid  text CHECK (verification_sid ~ '^HH[0-9a-f]{32}$'),
    -- NOT_SUBMITTED: Twilio has no record for the number (it is restricted).
    status            text NOT NULL CHECK (status IN ('NOT_SUBMITTED', 'PENDING_REVIEW', 'IN_REVIEW',
                                                      'TWILIO_APPROVED', 'TWILIO_REJECTED')),
    rejection_reason  text,
    rejection_reasons jsonb NOT NULL DEFAULT '[]',  -- [{"reason", "error_code"}], as Twilio lists them
    error_code        integer,
    edit_allowed      boolean NOT NULL DEFAULT false,
    edit_expiration   timestamptz,
    submitted         jsonb,                        -- the form last submitted from Textpulse, if any
    checked_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sender_verifications_checked ON sender_verifications (checked_at);
