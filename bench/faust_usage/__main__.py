"""``python -m bench.faust_usage [--one-agent]``: a faust worker for the usage rollups (settings from TEXTPULSE_*).

``--one-agent`` handles the three topics in one agent, one event at a time, as the usage service's consumer
does; without it each topic has its own agent.
"""

import sys

from bench.faust_usage.app import build_app
from libs.common.settings import load_settings

one_agent = "--one-agent" in sys.argv[1:]
sys.argv[1:] = ["worker", "--loglevel", "warn", "--without-web"]
build_app(load_settings(), one_agent=one_agent).main()
