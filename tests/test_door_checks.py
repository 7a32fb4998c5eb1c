"""Issue 17, item 10: values that used to pass the door (text and flags as numbers, a wrong input
width, a folder as the plane's output file) are refused there in one line."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from infodrop.mi import gaussian_dropout_mi
from infodrop.models import MLP
from infodrop.nn import GaussianDropout, InformationDropout
from infodrop.plane import InformationPlane

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize(("variance", "message"), [
    ("0.25", r"variance must be a number, got the text '0.25'; pass variance=0.25 without quotes"),
    (True, r"variance must be a number, got True; give a number, not a flag"),
])
def test_a_variance_given_as_text_or_a_flag_is_refused(variance, message):
    features = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(ValueError, match=message):
        gaussian_dropout_mi(features, variance, device="cpu")
    with pytest.raises(ValueError, match=message):
        GaussianDropout(variance)


def test_information_dropout_refuses_an_input_of_the_wrong_width_in_one_line():
    layer = InformationDropout(nn.Linear(10, 5), nn.Linear(10, 5))
    with pytest.raises(ValueError, match=r"x has 7 features in its last dimension but the wrapped layer is a Linear layer with in_features=10"):
        layer(torch.randn(3, 7))
    conv = InformationDropout(nn.Conv2d(3, 4, 3), nn.Conv2d(3, 4, 3))
    with pytest.raises(ValueError, match=r"has 1 channels but the wrapped layer is a convolution with in_channels=3"):
        conv(torch.randn(2, 1, 8, 8))


def test_information_plane_refuses_a_folder_as_its_output_before_computing(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), GaussianDropout(0.25), nn.Linear(6, 2))
    data = (torch.randn(16, 4), torch.randint(0, 2, (16,)))
    with pytest.raises(ValueError, match=r"output=.* is a folder; give a file path, e.g. output=.*plane.json"):
        InformationPlane(model, data, output=tmp_path, device="cpu")
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match=r"the folder of output=.*file.*: .*file is a file, not a folder"):
        InformationPlane(model, data, output=tmp_path / "file" / "plane.json", device="cpu")
