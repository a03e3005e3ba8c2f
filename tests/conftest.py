import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def pytest_sessionfinish(session, exitstatus):
    from helpers import stop_started_services

    stop_started_services()


pytest_plugins = ["pytester"]
