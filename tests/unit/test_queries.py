import pytest

from libs.common.db import parse_queries
from libs.common.errors import ConfigurationError


def test_named_params_become_positional_in_first_use_order() -> None:
    queries = parse_queries(
        """
-- name: claim-send
-- Claims a recipient once; a second claim finds the row and does nothing.
INSERT INTO ledger (run_id, recipient_id, claimed_at)
VALUES (:run_id, :recipient_id, now())
ON CONFLICT DO NOTHING
RETURNING :run_id::uuid AS again;

-- name: count
SELECT count(*) FROM ledger WHERE run_id = :run_id
"""
    )
    claim = queries["claim-send"]
    assert claim.params == ("run_id", "recipient_id")
    assert "VALUES ($1, $2, now())" in claim.sql
    assert "$1::uuid" in claim.sql  # a cast after a parameter is kept
    assert "--" not in claim.sql
    assert claim.args({"recipient_id": 2, "run_id": 1}) == [1, 2]
    assert queries["count"].sql == "SELECT count(*) FROM ledger WHERE run_id = $1"


def test_a_missing_parameter_is_named() -> None:
    query = parse_queries("-- name: q\nSELECT :a, :b")["q"]
    with pytest.raises(TypeError, match="needs b"):
        query.args({"a": 1})


def test_duplicate_and_empty_queries_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="defined twice"):
        parse_queries("-- name: q\nSELECT 1;\n-- name: q\nSELECT 2;")
    with pytest.raises(ConfigurationError, match="no statement"):
        parse_queries("-- name: empty\n-- only a comment\n")
