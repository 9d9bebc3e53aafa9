import pytest

from tests.helpers import SHAPES


@pytest.fixture(params=SHAPES, ids=["image", "signal"])
def shape(request):
    return request.param
