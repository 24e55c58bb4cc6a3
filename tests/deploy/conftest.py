from __future__ import annotations

import pytest

from tests.deploy.chart import Helm, build_helm


@pytest.fixture(scope="session")
def helm() -> Helm:
    return Helm(build_helm())
