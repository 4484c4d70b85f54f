"""The blocks of specs/blocks/zoo.yaml in tiny networks against PyTorch, and the shipped specs
that use them (with the larger classic ones) through one float32 training step each at a
reduced input size: the loss is finite and every parameter gets a gradient. One step each,
since each of these networks compiles many kernels."""
import numpy as np
import pytest

import cnngraph

from helpers import SPECS, check_net

ZOO = f"include: [{SPECS / 'blocks' / 'zoo.yaml'}]\n"
HEAD = "  - global_avgpool\n  - flatten\n  - dense: {out: 3}\n"
BLOCKS = {
    "resnext": ((4, 6, 6), "  - resnext_stage: {planes: 2, blocks: 2, stride: 2, groups: 2,"
                           " base_width: 64}\n"),
    "se_resnet": ((4, 5, 5), "  - se_stage: {width: 2, blocks: 2, stride: 2, reduction: 4}\n"),
    "inception_v3_a_b": ((3, 7, 7), "  - inception_v3_a: {pool_features: 2}\n"
                                    "  - inception_v3_b\n"),
    "inception_v3_c_d_e": ((3, 5, 5), "  - inception_v3_c: {c7: 2}\n  - inception_v3_d\n"
                                      "  - inception_v3_e\n"),
}


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_zoo_blocks_match_pytorch(write_spec, name):
    shape, layers = BLOCKS[name]
    net = cnngraph.load(write_spec(f"version: 1\ninput: {list(shape)}\n{ZOO}layers:\n"
                                   f"{layers}{HEAD}"))
    check_net(net, dtype="float64", batch=2)


# the smallest inputs the strides allow, at least 32x32 (inception_v3 needs 75x75: its stem
# and two reductions leave a 1x1 map for the last modules)
INPUTS = {"resnext50_32x4d": (3, 32, 32), "se_resnet50": (3, 32, 32),
          "inception_v3": (3, 75, 75), "vgg13": (3, 32, 32), "resnet101": (3, 32, 32)}


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_one_training_step(name):
    net = cnngraph.load(SPECS / f"{name}.yaml", input_shape=INPUTS[name])
    model = cnngraph.compile(net, dtype="float32", seed=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, *INPUTS[name])).astype(np.float32)
    loss = model.loss_and_grad(x, rng.integers(0, 1000, 2))
    assert np.isfinite(loss)
    grads = model.host_grads()
    assert set(grads) == set(net.param_shapes())
    no_gradient = [k for k, g in grads.items() if not np.any(g)]
    assert no_gradient == []
    assert all(np.isfinite(g).all() for g in grads.values())
