-- Campaign and run states through their transition tables, enforced by PostgreSQL (docs/states.md).
--
-- state_transitions holds every allowed (from, to) of both machines: the rows of TRANSITIONS in
-- libs/common/campaign_states.py (machine 'campaign') and libs/common/run_states.py (machine 'run').
-- This migration fills it as the tables stand today; python -m deploy.migrate compares it with the Python
-- tables at every boot and rewrites what differs (libs/common/state_tables.py), so the two cannot drift.
CREATE TABLE state_transitions (
    machine    text NOT NULL CHECK (machine IN ('campaign', 'run')),
    from_state text NOT NULL,
    to_state   text NOT NULL,
    PRIMARY KEY (machine, from_state, to_state),
    CHECK (from_state <> to_state)
);

INSERT INTO state_transitions (machine, from_state, to_state) VALUES
    ('campaign', 'draft', 'scheduled'),
    ('campaign', 'draft', 'sending'),
    ('campaign', 'scheduled', 'sending'),
    ('campaign', 'scheduled', 'cancelled'),
    ('campaign', 'scheduled', 'failed'),
    ('campaign', 'sending', 'scheduled'),
    ('campaign', 'sending', 'paused'),
    ('campaign', 'sending', 'completed'),
    ('campaign', 'sending', 'cancelled'),
    ('campaign', 'sending', 'failed'),
    ('campaign', 'paused', 'sending'),
    ('campaign', 'paused', 'cancelled'),
    ('campaign', 'paused', 'failed'),
    ('campaign', 'completed', 'archived'),
    ('campaign', 'cancelled', 'archived'),
    ('campaign', 'failed', 'scheduled'),
    ('campaign', 'failed', 'sending'),
    ('campaign', 'failed', 'archived'),
    ('run', 'pending', 'resolving'),
    ('run', 'pending', 'refused'),
    ('run', 'pending', 'failed'),
    ('run', 'pending', 'missed'),
    ('run', 'pending', 'cancelled'),
    ('run', 'resolving', 'sending'),
    ('run', 'resolving', 'completed'),
    ('run', 'resolving', 'over_limit'),
    ('run', 'resolving', 'refused'),
    ('run', 'resolving', 'failed'),
    ('run', 'resolving', 'cancelled'),
    ('run', 'sending', 'paused'),
    ('run', 'sending', 'completed'),
    ('run', 'sending', 'refused'),
    ('run', 'sending', 'cancelled'),
    ('run', 'paused', 'sending'),
    ('run', 'paused', 'refused'),
    ('run', 'paused', 'cancelled');

-- Whether the table allows from -> to. Statements that move states filter with it
-- (WHERE state_may_change('run', state, 'paused')), so they only ever attempt an allowed move.
CREATE FUNCTION state_may_change(p_machine text, p_from text, p_to text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM state_transitions
                   WHERE machine = p_machine AND from_state = p_from AND to_state = p_to)
$$;

-- Any other change of state is refused, whoever writes it: a new statement cannot drift from the table.
-- Only changes are checked (a reschedule writes scheduled over scheduled); rows are inserted in any state
-- (a new campaign is a draft and a new run pending by their defaults; the demo seeds and tests insert
-- rows in the state they need).
CREATE FUNCTION refuse_unlisted_state_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT state_may_change(TG_ARGV[0], OLD.state, NEW.state) THEN
        RAISE EXCEPTION '% %: cannot go from % to %', TG_ARGV[0], OLD.id, OLD.state, NEW.state
            USING ERRCODE = 'check_violation', CONSTRAINT = 'state_transitions', TABLE = TG_TABLE_NAME,
                  COLUMN = 'state',
                  HINT = 'allowed moves are the rows of state_transitions (docs/states.md)';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER campaigns_state_transition
BEFORE UPDATE OF state ON campaigns
FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state)
EXECUTE FUNCTION refuse_unlisted_state_change('campaign');

CREATE TRIGGER campaign_runs_state_transition
BEFORE UPDATE OF state ON campaign_runs
FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state)
EXECUTE FUNCTION refuse_unlisted_state_change('run');
