"""Where `make test` runs PostgreSQL and Kafka (TEXTPULSE_TEST_INFRA), decided without a Docker engine:
the engine check is injected."""

import pytest
import yaml

from deploy.stack import REPO, choose_test_infra
from tests import infra_containers


class Engine:
    def __init__(self, answers: bool) -> None:
        self.answers, self.asked = answers, 0

    def __call__(self) -> bool:
        self.asked += 1
        return self.answers


@pytest.mark.parametrize("mode", [None, "", "local"])
def test_local_is_the_default_and_never_asks_for_an_engine(mode: str | None) -> None:
    engine = Engine(answers=True)
    assert choose_test_infra(mode, engine) == "local"
    assert engine.asked == 0


@pytest.mark.parametrize(("mode", "answers", "chosen"), [
    ("auto", True, "containers"),
    ("auto", False, "local"),
    ("containers", True, "containers"),
])
def test_containers_when_asked_for_and_an_engine_answers(mode: str, answers: bool, chosen: str) -> None:
    assert choose_test_infra(mode, Engine(answers)) == chosen


def test_containers_without_an_engine_stops_with_the_reason() -> None:
    with pytest.raises(SystemExit, match="TEXTPULSE_TEST_INFRA=containers, but no Docker engine answers"):
        choose_test_infra("containers", Engine(answers=False))


def test_an_unknown_mode_names_the_variable_and_the_choices() -> None:
    engine = Engine(answers=True)
    with pytest.raises(SystemExit, match=r"TEXTPULSE_TEST_INFRA='docker' is not one of local, containers, auto"):
        choose_test_infra("docker", engine)
    assert engine.asked == 0


def test_the_engine_check_says_no_when_nothing_listens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:9")  # the discard port: nothing answers there
    assert infra_containers.docker_engine_answers() is False


def test_the_containers_run_the_images_docker_compose_runs() -> None:
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    assert infra_containers.KAFKA_IMAGE == services["kafka"]["image"]
    assert infra_containers.POSTGRES_IMAGE == services["postgres"]["image"]
