-- Approval before sending (issue 27): an organisation may require that someone other than a campaign's
-- authors approves its wording, audience and sender before it is scheduled or sent (services/api/approval.py).

-- Off by default: nothing changes for an organisation until an admin turns it on in Settings.
ALTER TABLE organisations ADD COLUMN require_approval boolean NOT NULL DEFAULT false;

-- 'approver': staff who may also approve campaigns (admins may too). API keys never approve.
ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check CHECK (role IN ('admin', 'approver', 'staff'));

-- The two review states (libs/common/campaign_states.py).
ALTER TABLE campaigns DROP CONSTRAINT campaigns_state_check;
ALTER TABLE campaigns ADD CONSTRAINT campaigns_state_check
    CHECK (state IN ('draft', 'in_review', 'approved', 'scheduled', 'sending', 'paused', 'completed',
                     'cancelled', 'failed', 'archived'));

-- content_authors: everyone who wrote or changed the wording, audience or sender (never its approver).
-- approval_fingerprint: the digest of what was approved; scheduling and sending compare it with the content.
-- review_comment: why the last review was rejected (cleared when it is submitted again).
ALTER TABLE campaigns
    ADD COLUMN content_authors text[] NOT NULL DEFAULT '{}',
    ADD COLUMN approval_fingerprint text,
    ADD COLUMN approved_at timestamptz,
    ADD COLUMN review_comment text;
UPDATE campaigns SET content_authors = ARRAY[created_by] WHERE created_by IS NOT NULL;

-- The new moves; python -m deploy.migrate keeps this table equal to the Python one anyway.
INSERT INTO state_transitions (machine, from_state, to_state) VALUES
    ('campaign', 'draft', 'in_review'),
    ('campaign', 'in_review', 'approved'),
    ('campaign', 'in_review', 'draft'),
    ('campaign', 'approved', 'scheduled'),
    ('campaign', 'approved', 'sending'),
    ('campaign', 'approved', 'in_review'),
    ('campaign', 'scheduled', 'in_review'),
    ('campaign', 'failed', 'in_review')
ON CONFLICT DO NOTHING;
