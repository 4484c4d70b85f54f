import numpy as np
import pytest

import cnngraph
from cnngraph.train.optim import SGD

torch = pytest.importorskip("torch")

SPEC = "version: 1\ninput: [6]\nlayers: [dense: {out: 5}, relu, dense: {out: 3}]\n"


@pytest.mark.parametrize("momentum, nesterov, weight_decay", [
    (0.0, False, 0.0), (0.9, False, 0.0), (0.9, True, 1e-2), (0.5, False, 5e-4)])
def test_sgd_matches_pytorch_over_steps(write_spec, momentum, nesterov, weight_decay):
    model = cnngraph.compile(cnngraph.load(write_spec(SPEC)), dtype="float64")
    params = {k: torch.tensor(np.array(v), requires_grad=True) for k, v in model.params.items()}
    opt = torch.optim.SGD(list(params.values()), lr=0.1, momentum=momentum, nesterov=nesterov,
                          weight_decay=weight_decay)
    ours = SGD(model, lr=0.1, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
    rng = np.random.default_rng(0)
    for _ in range(3):
        x, y = rng.standard_normal((4, 6)), rng.integers(0, 3, 4)
        model.loss_and_grad(x, y)
        ours.step()
        opt.zero_grad()
        h = torch.relu(torch.tensor(x) @ params["dense1.weight"].T + params["dense1.bias"])
        logits = h @ params["dense2.weight"].T + params["dense2.bias"]
        torch.nn.functional.cross_entropy(logits, torch.tensor(y)).backward()
        opt.step()
    for name, value in params.items():
        np.testing.assert_allclose(model.params[name], value.detach().numpy(), rtol=1e-10)
