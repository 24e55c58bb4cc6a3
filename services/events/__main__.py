from libs.common.runtime import run_service
from services.events.main import NAME, build

run_service(NAME, build)
