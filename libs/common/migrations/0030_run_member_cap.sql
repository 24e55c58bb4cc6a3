-- At most this many members in one run's audience: a run whose IQA, CSV or list returns more
-- is refused before anything is sent (services/audience, 'audience_too_large'), and the preview and send
-- checks say so up front (libs/common/send_checks.py). NULL: the platform's default,
-- TEXTPULSE_RUN_MEMBER_CAP (250,000 unless the operator sets another).
ALTER TABLE organisations
    ADD COLUMN run_member_cap integer CHECK (run_member_cap BETWEEN 1 AND 10000000);

