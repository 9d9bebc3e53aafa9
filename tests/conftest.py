import os

# submitit configures logging when first imported (logging.config.dictConfig), which shuts down every
# existing handler — pytest's log-capture handlers included when that import happens inside a
# test. Tests keep submitit's logger unconfigured (its warnings still reach stderr).
os.environ.setdefault("SUBMITIT_LOG_LEVEL", "NOCONFIG")

import pytest

from tests.helpers import SHAPES


@pytest.fixture(params=SHAPES, ids=["image", "signal"])
def shape(request):
    return request.param
