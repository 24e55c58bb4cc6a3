-- PostgreSQL's copy of the transition tables (migration 0033), kept equal to the Python ones
-- (libs/common/state_tables.py). The trigger refuse_unlisted_state_change reads it.

-- name: transition-rows
SELECT machine, from_state, to_state FROM state_transitions ORDER BY machine, from_state, to_state;

-- name: add-transitions
-- ON CONFLICT: two boots at once may both find a row missing.
INSERT INTO state_transitions (machine, from_state, to_state)
SELECT * FROM unnest(CAST(:machines AS text[]), CAST(:froms AS text[]), CAST(:tos AS text[]))
ON CONFLICT DO NOTHING;

-- name: remove-transitions
DELETE FROM state_transitions t
USING unnest(CAST(:machines AS text[]), CAST(:froms AS text[]), CAST(:tos AS text[])) AS u(machine, f, t)
WHERE t.machine = u.machine AND t.from_state = u.f AND t.to_state = u.t;
