"""The test settings with access tokens that expire within seconds, for a server that shows the client refreshing."""

from __future__ import annotations

import os
from datetime import timedelta

from tests.settings import *  # noqa: F403
from tests.settings import SIMPLE_JWT

SIMPLE_JWT = {**SIMPLE_JWT, "ACCESS_TOKEN_LIFETIME": timedelta(seconds=int(os.environ["MULTIBOT_TEST_ACCESS_SECONDS"]))}
