-- A run's reason as a code plus typed facts (libs/common/run_reasons.py), beside the sentence for people.
--
-- state_reason_code is the stable code the alert watcher decides on (no_recipients, segment_limit,
-- sender_unverified, twilio_20003, failure_threshold, too_late, imis_unavailable...), and
-- state_reason_detail its facts: sender, verification, error_code, limit_of, message, counts.
-- state_reason stays the sentence shown as it is ("<code>: <words>"), rendered from them when written.
ALTER TABLE campaign_runs
    ADD COLUMN state_reason_code text,
    ADD COLUMN state_reason_detail jsonb NOT NULL DEFAULT '{}'::jsonb;

-- Existing reasons were written as "<code>: <words>": the code is the part before the colon, the words
-- are kept as the message, and the sender and Twilio error a reason names become their own fields.
WITH parsed AS (
    SELECT id,
           substring(state_reason FROM '^\s*([a-z][a-z0-9_]*)\s*:') AS code,
           substring(state_reason FROM '^\s*[a-z][a-z0-9_]*\s*:\s*(.*)$') AS words,
           regexp_match(state_reason, '(\+[1-9][0-9]{6,14}|MG[0-9a-f]{32}) is ([a-z_]+)') AS sender
    FROM campaign_runs
    WHERE state_reason IS NOT NULL
)
UPDATE campaign_runs r
SET state_reason_code = coalesce(p.code, 'unspecified'),
    state_reason_detail = jsonb_strip_nulls(jsonb_build_object(
        'message', coalesce(p.words, r.state_reason),
        'error_code', CAST(substring(p.code FROM '^twilio_([0-9]{5})$') AS integer),
        'sender', p.sender[1],
        'verification', p.sender[2]))
FROM parsed p
WHERE r.id = p.id;

ALTER TABLE campaign_runs
    ADD CONSTRAINT campaign_runs_reason_coded CHECK ((state_reason IS NULL) = (state_reason_code IS NULL));
