"""Password hashes cost what the settings say: argon2-cffi's defaults, or argon2's minimums for test suites."""

from __future__ import annotations

from argon2 import PasswordHasher, extract_parameters

from services.api import auth


def test_the_suite_hashes_cheaply_and_a_service_restores_the_cost_it_found() -> None:
    assert extract_parameters(auth.hash_password("correct horse battery staple")).memory_cost == 8
    with auth.password_cost("standard"):
        standard = auth.hash_password("correct horse battery staple")
        assert extract_parameters(standard) == extract_parameters(PasswordHasher().hash("x"))
        assert auth.check_password(standard, "correct horse battery staple") == auth.Checked(ok=True)
    assert extract_parameters(auth.hash_password("correct horse battery staple")).memory_cost == 8


def test_a_hash_of_another_cost_still_checks_and_is_rehashed_at_todays() -> None:
    with auth.password_cost("standard"):
        standard = auth.hash_password("correct horse battery staple")
    checked = auth.check_password(standard, "correct horse battery staple")
    assert checked.ok and checked.rehash is not None
    assert extract_parameters(checked.rehash).memory_cost == 8
