-- Recipient events are pointers; the frozen snapshot (0006) is what the dispatcher sends (issue 20).

-- The sender each queued recipient is sent from, frozen with the snapshot like its number and body: the
-- campaign's sender or the organisation's default can change while a run is paused, and the texts
-- already handed to the dispatcher must still go from the sender the audience was resolved for.
ALTER TABLE run_recipients ADD COLUMN sender text CHECK (sender ~ '^(\+[1-9][0-9]{6,14}|MG[0-9a-f]{32})$');

-- Runs still being sent when this migration runs get the sender their resolution used (the rule of
-- services/audience run-context). Finished runs keep NULL: nothing is sent for them any more.
UPDATE run_recipients p
SET sender = s.address
FROM campaign_runs r
JOIN campaigns c ON c.id = r.campaign_id
JOIN senders s ON s.org_id = r.org_id
     AND s.id = coalesce(c.sender_id, (SELECT d.id FROM senders d WHERE d.org_id = r.org_id AND d.is_default))
WHERE p.run_id = r.id AND p.status = 'queued' AND r.state IN ('resolving', 'sending', 'paused');

-- The dispatcher looks each recipient event up by (run_id, recipient_id). recipient_id is a random UUID
-- per row, so this is unique; it costs the audience's 100,000-row COPY one more index to fill.
CREATE UNIQUE INDEX run_recipients_by_recipient ON run_recipients (run_id, recipient_id);
