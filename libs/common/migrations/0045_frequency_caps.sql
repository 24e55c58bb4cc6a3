-- The organisation's own sending limits. They only tighten the law's (libs/common/quiet_hours.py):
-- a window in the recipient's local time (minutes after midnight), the weekdays it sends on (0 Monday ..
-- 6 Sunday), local holidays with no texts, and a cap on marketing texts per member: at most
-- marketing_cap_texts in any marketing_cap_days days, across all campaigns (transactional ones excepted).
ALTER TABLE organisations
    ADD COLUMN send_window_start_min integer NOT NULL DEFAULT 0 CHECK (send_window_start_min BETWEEN 0 AND 1439),
    ADD COLUMN send_window_end_min   integer NOT NULL DEFAULT 1440 CHECK (send_window_end_min BETWEEN 1 AND 1440),
    ADD COLUMN send_days             integer[] NOT NULL DEFAULT '{0,1,2,3,4,5,6}'
        CHECK (send_days <@ ARRAY[0, 1, 2, 3, 4, 5, 6]),
    ADD COLUMN holidays              date[] NOT NULL DEFAULT '{}',
    ADD COLUMN marketing_cap_texts   integer CHECK (marketing_cap_texts >= 1),
    ADD COLUMN marketing_cap_days    integer CHECK (marketing_cap_days BETWEEN 1 AND 365),
    ADD CONSTRAINT organisations_send_window CHECK (send_window_start_min < send_window_end_min),
    ADD CONSTRAINT organisations_marketing_cap CHECK ((marketing_cap_texts IS NULL) = (marketing_cap_days IS NULL));
