"""Password hashes cost what the settings say: argon2-cffi's defaults, or argon2's minimums for test suites."""

from __future__ import annotations

from argon2 import PasswordHasher, extract_parameters

from services.api import auth


def test_the_suite_hashes_cheaply_and_a_service_restores_the_cost_it_found() -> None:
    assert extract_parameters(auth.hash_password("correct horse battery staple")).memory_cost == 8
    with auth.password_cost("standard"):
        standard = auth.hash_password("correct horse battery staple")
    defaults = PasswordHasher()
    made = extract_parameters(standard)
    assert (made.time_cost, made.memory_cost, made.parallelism) == (
        defaults.time_cost, defaults.memory_cost, defaults.parallelism)


def test_a_hash_of_another_cost_still_checks_and_is_rehashed_at_todays() -> None:
    other = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1).hash("correct horse battery staple")
    checked = auth.check_password(other, "correct horse battery staple")
    assert checked.ok and checked.rehash is not None and extract_parameters(checked.rehash).memory_cost == 8
