"""docker-compose.yml cannot run here (no Docker engine); these checks keep it correct by reading it."""

from pathlib import Path

import yaml

from deploy.stack import REPO, processes

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_compose_names_every_process_of_the_local_stack() -> None:
    local = {p.module.split(".")[-1] if p.module.startswith("services.") else p.name for p in processes()}
    assert local | {"postgres", "kafka", "migrate", "topics", "twilio-standin", "imis-standin",
                     "smtp-catcher"} <= set(SERVICES)


def test_kafka_is_the_official_image_in_kraft_mode() -> None:
    kafka = SERVICES["kafka"]
    assert kafka["image"].startswith("apache/kafka:4.")
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert kafka["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_every_python_process_runs_a_module_that_exists() -> None:
    for name, service in SERVICES.items():
        command = service.get("command")
        if command and command[:2] == ["python", "-m"]:
            module = command[2].replace(".", "/")
            assert (Path(REPO) / module / "__main__.py").exists() or (Path(REPO) / f"{module}.py").exists(), name


def test_services_wait_for_migrations_and_topics() -> None:
    for name in ["api", "optout", "scheduler", "audience", "dispatcher"]:
        assert set(SERVICES[name]["depends_on"]) == {"migrate", "topics"}, name
        env = SERVICES[name]["environment"]
        assert env["TEXTPULSE_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert env["TEXTPULSE_DATABASE_URL"].startswith("postgresql://textpulse:textpulse@postgres:5432/")
