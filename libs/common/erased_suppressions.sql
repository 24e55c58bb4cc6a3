-- Suppressions of erased members, kept under their numbers' keyed digests (migration 0031;
-- libs/common/erased_suppressions.py).

-- name: suppressed-digests
-- The rule of is_suppressed (migration 0011) for digests: organisation-wide entries and this sender's. All
-- of them, not only an audience's: erasures are rare, so this is a handful of rows, where matching 100,000
-- digests with ANY() took 0.5 s (and computing them another 0.5 s) on a loaded 2-core machine.
SELECT DISTINCT phone_digest FROM erased_suppressions WHERE org_id = :org_id AND scope IN ('', :sender);

-- name: lift-digests
-- Lifts each (digest, scope), or every scope of the digest where the scope is NULL; returns what was lifted.
DELETE FROM erased_suppressions e
USING unnest(CAST(:digests AS text[]), CAST(:scopes AS text[])) AS u(digest, scope)
WHERE e.org_id = :org_id AND e.phone_digest = u.digest AND (u.scope IS NULL OR e.scope = u.scope)
RETURNING e.phone_digest, e.scope;
