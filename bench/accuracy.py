"""Train a spec on Fashion-MNIST with cnngraph and with PyTorch, same recipe, same machine.

    .venv/bin/python bench/accuracy.py specs/lenet-bn.yaml [--torch-epochs N]

cnngraph trains with `cnngraph train`'s runner (its spec's `train:` section) and is evaluated
on the test set. PyTorch trains the same network (tools/torch_reference.py) on the same split,
normalisation, augmented batches, learning rates per step, weight decay and label smoothing,
for --torch-epochs epochs (default: all; 0 skips it), and is evaluated the same way. Prints
test accuracy and seconds per epoch for both. A benchmark, not a test.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import torch  # noqa: E402

import cnngraph  # noqa: E402
from cnngraph.tools.torch_reference import run  # noqa: E402
from cnngraph.train import config as train_config  # noqa: E402
from cnngraph.train import finetune  # noqa: E402
from cnngraph.train.loader import Augment, Normalizer, batches  # noqa: E402
from cnngraph.train.readers import load_dataset  # noqa: E402
from cnngraph.train.runner import (  # noqa: E402
    data_path,
    evaluate,
    load_for_inference,
    make_schedule,
    split,
    train,
)


def torch_fit(net, config, train_set, normalizer, epochs: int):
    """PyTorch's training of `net` by cnngraph's recipe: (params, buffers) as dicts of tensors,
    and the seconds of each epoch."""
    model = cnngraph.compile(net, seed=config.seed)          # the same initial weights
    params = {k: torch.tensor(np.array(v), requires_grad=True) for k, v in model.params.items()}
    buffers = {k: torch.tensor(np.array(v)) for k, v in model.buffers.items()}
    chosen = finetune.settings(net, config.weight_decay, config.decay_bn_bias)[0]
    groups = [{"params": [value], "weight_decay": chosen.weight_decay[name]}
              for name, value in params.items()]
    if config.optimizer == "sgd":
        opt = torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum,
                              nesterov=config.nesterov)
    elif config.optimizer in ("adam", "adamw"):
        kind = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
        opt = kind(groups, lr=config.lr, betas=config.betas, eps=config.eps)
    else:
        opt = torch.optim.RMSprop(groups, lr=config.lr, alpha=config.alpha, eps=config.eps,
                                  momentum=config.momentum)
    schedule = make_schedule(config)
    augment = Augment(**config.augment)
    steps = math.ceil(len(train_set) / config.batch_size)
    seconds = []
    for epoch in range(epochs):
        rng = np.random.default_rng([config.seed, epoch])
        began = time.perf_counter()
        for step, (images, labels) in enumerate(batches(train_set.x, train_set.y,
                                                        config.batch_size, normalizer, rng,
                                                        augment)):
            for group in opt.param_groups:
                group["lr"] = schedule.lr(epoch, step, steps)
            opt.zero_grad()
            logits = run(net, params, buffers, torch.from_numpy(images), True, dropout=True)
            loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(labels),
                                                     label_smoothing=config.label_smoothing)
            loss.backward()
            if config.clip_grad_norm:
                torch.nn.utils.clip_grad_norm_(params.values(), config.clip_grad_norm)
            opt.step()
        seconds.append(time.perf_counter() - began)
    return params, buffers, seconds


def torch_accuracy(net, params: dict, buffers: dict, test_set, normalizer) -> float:
    """Top-1 accuracy of PyTorch's eval mode with these weights."""
    correct = 0
    with torch.no_grad():
        for images, labels in batches(test_set.x, test_set.y, 512, normalizer):
            logits = run(net, params, buffers, torch.from_numpy(images), False)
            correct += int((logits.argmax(1).numpy() == labels).sum())
    return correct / len(test_set)


def torch_training(net, config, train_set, test_set, normalizer, epochs: int):
    """PyTorch's test accuracy after `epochs` epochs of cnngraph's recipe, and its seconds per
    epoch."""
    params, buffers, seconds = torch_fit(net, config, train_set, normalizer, epochs)
    return torch_accuracy(net, params, buffers, test_set, normalizer), seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("spec")
    parser.add_argument("--torch-epochs", type=int,
                        help="PyTorch epochs (default: all; 0: cnngraph alone)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    import numba
    torch.set_num_threads(numba.get_num_threads())
    net = cnngraph.load(args.spec)
    config = train_config.resolve(net.train)
    out = Path(args.out or f"runs/bench-{net.name}")
    result = train(net, Path(args.spec).read_text(), config, out, None)
    model, _, _ = load_for_inference(net, out / "best.npz")
    data = load_dataset(data_path(config.dataset), "train")
    train_set, _ = split(data, config.val_split, config.seed)
    normalizer = Normalizer.fit(train_set.x)
    test_set = load_dataset(data_path(config.dataset), "test")
    ours = evaluate(model, test_set, normalizer, 512)
    ours_epoch = float(np.median([h["seconds"] for h in result.history]))
    torch_epochs = config.epochs if args.torch_epochs is None else args.torch_epochs
    print(f"\n{net.name}: {config.epochs} epochs, {config.optimizer} lr {config.lr}, "
          f"batch {config.batch_size}, threads {numba.get_num_threads()}")
    print(f"  cnngraph: test accuracy {ours['acc']:.4f} (best checkpoint), "
          f"{ours_epoch:.1f} s/epoch")
    if torch_epochs == 0:        # cnngraph alone
        return
    torch_acc, torch_seconds = torch_training(net, config, train_set, test_set, normalizer,
                                              torch_epochs)
    torch_epoch = float(np.median(torch_seconds))
    print(f"  pytorch : test accuracy {torch_acc:.4f} after {torch_epochs} epochs, "
          f"{torch_epoch:.1f} s/epoch")
    print(f"  speed ratio (pytorch s/epoch / cnngraph s/epoch): {torch_epoch / ours_epoch:.2f}x")

if __name__ == "__main__":
    main()
