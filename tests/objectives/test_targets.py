import math

import torch

from leanvl.objectives.targets import soft_targets


def test_rows_are_normalised_and_the_entropy_is_their_mean_over_rows_with_a_target():
    weights = torch.tensor([1.0, 3.0, 2.0, 0.0])  # row 0: two labels; row 1: one; row 2: none; row 3: zero weight
    rows = torch.tensor([0, 0, 1, 3])
    target, valid, entropy = soft_targets(weights, rows, 4, torch.float64)
    torch.testing.assert_close(target, torch.tensor([0.25, 0.75, 1.0, 0.0], dtype=torch.float64))
    assert valid.tolist() == [True, True, False, False]
    h0 = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    assert entropy.item() == (h0 + 0.0) / 2
