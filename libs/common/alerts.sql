-- Raising an alert (libs/common/alerts.py). Runs in the caller's transaction, in any service.

-- name: alert-target
-- Who hears about it and the names the e-mail uses: the organisation's alert addresses and, for an alert
-- about a campaign (given directly or through its run), the campaign's contact. A run or campaign of
-- another organisation is not found (campaign_id comes back null).
SELECT o.name AS org_name, o.time_zone, o.alert_emails, coalesce(a.test_mode, false) AS test,
       c.id AS campaign_id, c.name AS campaign_name, c.contact_email
FROM organisations o
LEFT JOIN sms_accounts a ON a.org_id = o.id
LEFT JOIN campaign_runs r ON r.id = CAST(:run_id AS uuid) AND r.org_id = o.id
LEFT JOIN campaigns c ON c.id = coalesce(CAST(:campaign_id AS uuid), r.campaign_id) AND c.org_id = o.id
WHERE o.id = :org_id;

-- name: claim-condition
-- One statement, so two services raising the same condition at once cannot both claim it: the second
-- waits on the first's row lock. Returns how many times the condition has now been claimed; nothing
-- when it was claimed within its quiet period (a null quiet period: claimed once, ever).
INSERT INTO alert_conditions AS c (org_id, dedupe_key, kind)
VALUES (:org_id, :dedupe_key, :kind)
ON CONFLICT (org_id, dedupe_key) DO UPDATE
SET last_raised_at = now(), times = c.times + 1, kind = excluded.kind
WHERE CAST(:quiet_s AS float8) IS NOT NULL
  AND c.last_raised_at <= now() - make_interval(secs => CAST(:quiet_s AS float8))
RETURNING c.times;

-- name: insert-alert
INSERT INTO alerts (org_id, kind, dedupe_key, run_id, campaign_id, test, reminder, recipients, subject,
                    body_text, body_html, context, message_id, state, last_error)
VALUES (:org_id, :kind, :dedupe_key, :run_id, :campaign_id, :test, :reminder, :recipients, :subject,
        :body_text, :body_html, CAST(:context AS jsonb), :message_id, :state, :last_error)
RETURNING id;
