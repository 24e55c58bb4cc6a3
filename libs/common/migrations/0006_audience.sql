-- The audience service (issue 7): where a run's recipients come from, and the frozen snapshot of who gets
-- the text and who does not, and why. iMIS credentials (imis_accounts) and the number -> member index
-- (member_phone_index) are in 0004; the audience service fills member_phone_index as it resolves runs.

-- Which IQA columns mean what, per organisation (the aliases are the site's own, imis.md §2.2). No row:
-- the defaults below, which match the $/Textpulse/* queries of the stand-in.
CREATE TABLE audience_column_maps (
    org_id            uuid PRIMARY KEY REFERENCES organisations ON DELETE CASCADE,
    member_id_column  text NOT NULL DEFAULT 'ID',       -- falls back to the row's PrimaryParentIdentity
    mobile_column     text NOT NULL DEFAULT 'Mobile',
    first_name_column text NOT NULL DEFAULT 'FirstName',
    -- A true/'Yes'/1 in this column excludes the member as opted_out; NULL when the IQA has no such column.
    opt_out_column    text DEFAULT 'SmsOptOut',
    -- Merge field name -> IQA column alias, for every field other than first_name and member_id.
    merge_columns     jsonb NOT NULL DEFAULT
        '{"last_name": "LastName", "informal_name": "InformalName", "member_type": "MemberType", "chapter": "Chapter"}'
        CHECK (jsonb_typeof(merge_columns) = 'object'),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- Static lists of members kept in Textpulse. Each entry holds the number and merge values as they were
-- when the member was added; a run reads them as they are at resolution time.
CREATE TABLE member_lists (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id      uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description text NOT NULL DEFAULT '',
    created_by  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, name)
);

CREATE TABLE member_list_entries (
    list_id    uuid NOT NULL REFERENCES member_lists ON DELETE CASCADE,
    member_id  text NOT NULL CHECK (length(member_id) BETWEEN 1 AND 64),
    mobile     text,                                   -- as typed; normalised at resolution
    merge_values jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(merge_values) = 'object'),
    added_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (list_id, member_id)
);

-- A CSV file staff uploaded (services/audience/csv_source.py parses it). state 'ready' means its rows can
-- be a campaign's audience; 'refused' means the file as a whole was unusable (error_code says why, e.g.
-- csv_not_utf8, csv_mobile_column_missing). mapping: merge field -> header as it was resolved.
CREATE TABLE csv_uploads (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id        uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    filename      text NOT NULL DEFAULT '',
    uploaded_by   text,
    state         text NOT NULL CHECK (state IN ('ready', 'refused')),
    error_code    text,
    error         text,
    headers       text[] NOT NULL DEFAULT '{}',
    mapping       jsonb NOT NULL DEFAULT '{}',
    delimiter     text NOT NULL DEFAULT ',',
    rows_accepted integer NOT NULL DEFAULT 0,
    rows_rejected integer NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX csv_uploads_by_org ON csv_uploads (org_id, created_at DESC);

-- The accepted rows of an upload; line is the file line the row starts on (the header is line 1).
CREATE TABLE csv_upload_rows (
    upload_id    uuid NOT NULL REFERENCES csv_uploads ON DELETE CASCADE,
    line         integer NOT NULL,
    member_id    text NOT NULL DEFAULT '',             -- '' when the file has no member id column
    mobile       text NOT NULL DEFAULT '',
    merge_values jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (upload_id, line)
);

-- The downloadable report: every row refused and why (row_ragged, row_not_utf8, invalid_number, ...).
-- raw is the row as the file had it; exports pass it through csv_source.inert (formula injection).
CREATE TABLE csv_upload_rejections (
    upload_id uuid NOT NULL REFERENCES csv_uploads ON DELETE CASCADE,
    line      integer NOT NULL,
    reason    text NOT NULL,
    detail    text NOT NULL DEFAULT '',
    raw       text NOT NULL DEFAULT '',
    PRIMARY KEY (upload_id, line)
);

-- The frozen snapshot of a run: one row per member the audience returned, in the audience's order
-- (position). It answers "why did this member get (or not get) this text". Written once, with COPY, in
-- the same transaction that moves the run out of 'resolving', and never updated.
--   status 'queued': a Recipient event is (or will be) published with recipient_id, to = e164, body.
--     It has been published when position <= campaign_runs.published_through (see below).
--   status 'excluded': reason is one of the codes below; detail gives the specific code or figure
--   (phone_too_short, merge_value_missing, 'suppressed', 'imis_opt_out', twilio_30006, 'household'...).
-- Household numbers: one text per E.164 per run. The member it is attributed to is the one with the
-- lowest member id (numeric ids compared as numbers) among those who could receive it; the others are
-- 'duplicate_number' with duplicate_of naming that member.
-- Only the primary key is indexed: a 100,000-row COPY pays for every index, and every question asked of
-- a snapshot ("this run's rows for member X", "this run's counts by reason") starts from its run_id.
-- recipient_id is a random UUID per row; the dispatcher's ledger is keyed on (run_id, recipient_id).
CREATE TABLE run_recipients (
    run_id       uuid NOT NULL REFERENCES campaign_runs ON DELETE CASCADE,
    position     integer NOT NULL,
    recipient_id uuid NOT NULL,
    org_id       uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    member_id    text NOT NULL,          -- '' for a CSV row without a member id
    raw_phone    text,                   -- as the source had it
    e164         text CHECK (e164 ~ '^\+[1-9][0-9]{6,14}$'),
    region       text,
    merge_values jsonb,                  -- only the fields the body uses, as rendered from
    body         text,
    encoding     text CHECK (encoding IN ('GSM-7', 'UCS-2')),
    segments     integer NOT NULL DEFAULT 0 CHECK (segments BETWEEN 0 AND 100),
    status       text NOT NULL CHECK (status IN ('queued', 'excluded')),
    reason       text CHECK (reason IN ('missing_mobile', 'invalid_number', 'duplicate_number', 'duplicate_member',
                                        'opted_out', 'bad_number', 'render_failed', 'over_segment_limit')),
    detail       text,
    duplicate_of text,
    PRIMARY KEY (run_id, position),
    CHECK ((status = 'queued') = (reason IS NULL)),
    CHECK (status = 'excluded' OR (e164 IS NOT NULL AND body IS NOT NULL AND segments BETWEEN 1 AND 10))
);

-- Figures the audience service rolls up onto the run when it resolves it (targeted and excluded are in 0002).
ALTER TABLE campaign_runs
    -- {"opted_out": 12, "duplicate_number": 3, ...}: excluded members by reason.
    ADD COLUMN exclusions       jsonb NOT NULL DEFAULT '{}',
    -- Segments of every queued recipient: what the limits were checked against.
    ADD COLUMN planned_segments integer NOT NULL DEFAULT 0,
    ADD COLUMN estimated_cost   numeric(14, 5),
    ADD COLUMN resolved_at      timestamptz,
    -- The publishing checkpoint: every queued snapshot row with position <= published_through has been
    -- acknowledged by Kafka. Recipients are published in position order, so one number per run replaces
    -- a flag per row, whose 100,000 updates (each a new row version and index entries) cost seconds.
    ADD COLUMN published_through integer NOT NULL DEFAULT -1;
