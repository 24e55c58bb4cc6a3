"""``python -m bench.faust_usage [--one-agent] [--exactly-once]``: a faust worker for the usage rollups.

Settings come from the TEXTPULSE_* variables, as for the services. ``--one-agent`` handles the three topics
in one agent, one event at a time, as the usage service's consumer does; without it each topic has its own
agent. ``--exactly-once`` sets faust's ``processing_guarantee="exactly_once"``.
"""

import argparse
import sys

from bench.faust_usage.app import build_app
from libs.common.settings import load_settings

parser = argparse.ArgumentParser(prog="python -m bench.faust_usage")
parser.add_argument("--one-agent", action="store_true")
parser.add_argument("--exactly-once", action="store_true")
args = parser.parse_args()
sys.argv[1:] = ["worker", "--loglevel", "warn", "--without-web"]  # faust's own command line
build_app(load_settings(), one_agent=args.one_agent, exactly_once=args.exactly_once).main()
