-- A sender's pace (segments per second) within what Twilio sells for a toll-free number: 3 by default,
-- up to 150 as High-Throughput Toll-Free (libs/common/twilio_facts.py TOLL_FREE_SEGMENTS_PER_SECOND).
-- A rate above 150 was never honoured by Twilio anyway, and one below 1 would starve the sender: existing
-- rows are brought inside the range before the check is added, so the migration cannot fail on old data.
UPDATE senders SET segments_per_second = LEAST(GREATEST(segments_per_second, 1), 150)
WHERE segments_per_second NOT BETWEEN 1 AND 150;

ALTER TABLE senders
    DROP CONSTRAINT IF EXISTS senders_segments_per_second_check,
    ADD CONSTRAINT senders_segments_per_second_range CHECK (segments_per_second BETWEEN 1 AND 150);
