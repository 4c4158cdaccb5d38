"""Retrieval recall: planted pairs rank first, shuffled pairs do not, ranks counted exactly."""
import torch

from leanvl.eval.retrieval import correct_ranks, recall_metrics


def _unit(n: int, dim: int = 64, seed: int = 0) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.randn(n, dim, generator=torch.Generator().manual_seed(seed)), dim=-1)


def test_planted_pairs_rank_first():
    images = _unit(50)
    texts = torch.nn.functional.normalize(images + 0.05 * _unit(50, seed=1), dim=-1)
    result = recall_metrics(images, texts)
    assert result["i2t_r1"] == result["t2i_r1"] == result["mean_r1"] == 1.0


def test_unrelated_pairs_score_low():
    result = recall_metrics(_unit(50), _unit(50, seed=2))
    assert result["i2t_r1"] < 0.2 and result["i2t_r5"] < 0.4


def test_ranks_and_recall_at_k_on_a_known_matrix():
    sim = torch.tensor([[0.9, 0.1, 0.2],
                        [0.8, 0.5, 0.6],   # correct item 1 is beaten by two
                        [0.0, 0.7, 0.3]])  # correct item 2 is beaten by one
    assert correct_ranks(sim).tolist() == [1, 3, 2]
    r = recall_metrics(torch.eye(3), torch.eye(3), ks=(1, 2))
    assert r["i2t_r1"] == 1.0
    images, texts = torch.eye(3), torch.tensor([[1.0, 0, 0], [0, 0, 1.0], [0, 1.0, 0]])
    r = recall_metrics(images, texts, ks=(1, 3))
    assert abs(r["i2t_r1"] - 1 / 3) < 1e-9 and r["i2t_r3"] == 1.0
