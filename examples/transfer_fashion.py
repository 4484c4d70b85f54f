"""Transfer learning on Fashion-MNIST: does pre-training on other classes help with few labels?

    .venv/bin/python examples/transfer_fashion.py [--out runs/transfer] [--samples 1000]

Task A is classes 0-4 (T-shirt, trouser, pullover, dress, coat), every training image of
them; task B is classes 5-9 (sandal, shirt, sneaker, bag, ankle boot) with `--samples`
labelled training images (an equal number per class, drawn with a fixed seed), tested on all
5,000 test images of B. The network is a shipped spec (`--spec`: specs/lenet-bn.yaml or
specs/fmnist-vgg.yaml) with 5 outputs. It is trained on A by the spec's own recipe, then on
B five ways with one recipe (the spec's, `--epochs` epochs in batches of 64): from scratch;
fine-tuned from A's weights (`init_from`, the head a new layer); the same with the
pre-trained layers at a tenth of the rate (`train.param_groups`, the usual fine-tuning
recipe); as a linear probe (A's layers frozen, `train.freeze` and `train.bn: frozen`, the
new head alone trains); and with learning without forgetting (`train.lwf`: A's head kept as
the output `old`, learning what the starting network answered, while the new head learns B).
Each B run is repeated with `--seeds` seeds (the initialisation, the shuffle and the
held-out tenth). Prints, as Markdown, the test accuracy of each run's best checkpoint
(chosen on a tenth of B's samples held out), its mean and range over the seeds, and the mean
validation accuracy by epoch; then each way's accuracy on task A afterwards (how much it
forgot). Each run folder has its curves.png.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import cnngraph
from cnngraph.train import checkpoint
from cnngraph.train.config import DATASETS, resolve
from cnngraph.train.loader import Normalizer
from cnngraph.train.readers import load_dataset
from cnngraph.train.runner import evaluate, load_for_inference, train

ROOT = Path(__file__).resolve().parent.parent
# LeNet-BN with 5 outputs; B's head is a layer of another name, so init_from leaves it fresh;
# learning without forgetting keeps A's head (dense3, as A's spec names it) as the output `old`
HEADS = {"a": "  - dense: {out: 5}\n", "b": "  - dense: {out: 5}\n    id: head_b\n",
         "lwf": "  - dense: {out: 5}\n    output: old\n  - dense: {out: 5}\n    id: head_b\n"}


def split_tasks(x: np.ndarray, y: np.ndarray, samples: int | None, seed: int = 0):
    """Task A (classes 0-4, all of them) and task B (classes 5-9 as 0-4; `samples` of them,
    as many per class, or all where None): two (x, y) pairs."""
    rng = np.random.default_rng(seed)
    a = y < 5
    b_index = np.flatnonzero(~a)
    if samples is not None:
        per_class = samples // 5
        b_index = np.sort(np.concatenate([
            rng.choice(np.flatnonzero(y == c), per_class, replace=False) for c in range(5, 10)]))
    return (x[a], y[a]), (x[b_index], y[b_index] - 5)


def write_task(folder: Path, train_pair, test_pair) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split, (x, y) in (("train", train_pair), ("test", test_pair)):
        np.savez(folder / f"{split}.npz", x=x, y=y)
    return folder


def spec_for(task: str, folder: Path, spec: str = "lenet-bn") -> Path:
    """The shipped spec `spec` with 5 outputs, for task A, B or B with A's head kept (lwf);
    the data and the `include`d blocks are read from where the spec is written."""
    source = ROOT / "specs" / f"{spec}.yaml"
    text = source.read_text().replace("include: [blocks/", f"include: [{source.parent}/blocks/")
    path = folder / f"{spec}-{task}.yaml"
    text = text.replace("  - dense: {out: 10}\n", HEADS[task])
    if task == "lwf":
        text = text.replace("train:\n", "train:\n  losses: {old: {loss: cross_entropy}}\n")
    path.write_text(text)
    return path


def old_task_accuracy(out: Path, pretrained: Path, data_a: Path, spec_lwf: Path) -> float:
    """Task A's test accuracy after a run on B: the network of the run's best checkpoint with
    A's head, its own where it kept one (learning without forgetting), else the head as
    pre-training left it (the run changed the layers under it)."""
    model = cnngraph.compile(cnngraph.load(spec_lwf))
    params, buffers, _, meta = checkpoint.load(out / "best.npz")
    head = checkpoint.load(pretrained)[0]
    for name, value in model.params.items():
        value[...] = params[name] if name in params else head[name]
    for name, value in model.buffers.items():
        value[...] = buffers[name]
    normalizer = Normalizer.from_record(meta["normalizer"])
    return evaluate(model, load_dataset(data_a, "test"), normalizer, 512, output="old")["acc"]


def run(spec: Path, data: Path, out: Path, overrides: list[str]) -> dict:
    """Train, then the best checkpoint's test accuracy and the validation accuracies."""
    net = cnngraph.load(spec)
    train(net, spec.read_text(), resolve(net.train, overrides), out, str(data), overwrite=True)
    model, normalizer, _ = load_for_inference(net, out / "best.npz")
    test = evaluate(model, load_dataset(data, "test"), normalizer, 512)
    history = checkpoint.load(out / "last.npz")[3]["history"]   # best.npz's ends at its epoch
    return {"test_acc": test["acc"], "val_acc": [row["val_acc"] for row in history]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/transfer"))
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--pretrain-epochs", type=int,
                        help="epochs on task A [default: the spec's recipe]")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--spec", choices=("lenet-bn", "fmnist-vgg"), default="lenet-bn")
    args = parser.parse_args()
    source = DATASETS["fashion-mnist"]
    full_train, full_test = load_dataset(source, "train"), load_dataset(source, "test")
    a_train, b_train = split_tasks(full_train.x, full_train.y, args.samples)
    a_test, b_test = split_tasks(full_test.x, full_test.y, None)
    data_a = write_task(args.out / "data-a", a_train, a_test)
    data_b = write_task(args.out / "data-b", b_train, b_test)
    print(f"task A: {len(a_train[1]):,} training images of classes 0-4; task B: "
          f"{len(b_train[1]):,} of classes 5-9, tested on {len(b_test[1]):,}", flush=True)
    spec_a, spec_b = (spec_for(task, args.out, args.spec) for task in "ab")
    body = [n.name for n in cnngraph.load(spec_b).nodes if n.params and n.name != "head_b"]
    pretrained = run(spec_a, data_a, args.out / "pretrain",
                     [f"epochs={args.pretrain_epochs}"] if args.pretrain_epochs else [])
    print(f"pre-trained on A: test accuracy {pretrained['test_acc']:.4f}", flush=True)
    start = f"init_from={args.out / 'pretrain' / 'best.npz'}"
    ways = {"from scratch": [],
            "fine-tuned from A": [start],
            "fine-tuned, A's layers at lr x0.1": [
                start, "param_groups=[{match: '*', lr_mult: 0.1}, {match: head_b, lr_mult: 1}]"],
            "linear probe on A's features": [start, f"freeze={json.dumps(body)}", "bn=frozen"],
            "learning without forgetting": [start, "lwf={output: old, temperature: 2}"]}
    spec_lwf = spec_for("lwf", args.out, args.spec)
    results = {}
    for way, (name, settings) in enumerate(ways.items()):
        results[name] = []
        for seed in range(args.seeds):
            out = args.out / f"task-b-way{way}-seed{seed}"
            spec = spec_lwf if name == "learning without forgetting" else spec_b
            result = run(spec, data_b, out, [f"epochs={args.epochs}", "batch_size=64",
                                              f"seed={seed}", *settings])
            result["old_acc"] = old_task_accuracy(out, args.out / "pretrain" / "best.npz",
                                                  data_a, spec_lwf)
            results[name].append(result)
    print(f"\n{args.spec}, task B, {len(b_train[1]):,} labelled samples, {args.epochs} epochs, "
          f"{args.seeds} seeds:\n")
    epochs = sorted({1, *range(5, args.epochs + 1, 5), args.epochs})
    print("| B trained | test accuracy, mean | range | "
          + " | ".join(f"val, epoch {e}" for e in epochs) + " |")
    print("|---|---|---|" + "---|" * len(epochs))
    for name, runs in results.items():
        tests = [r["test_acc"] for r in runs]
        curve = np.mean([r["val_acc"] for r in runs], axis=0)
        print(f"| {name} | {np.mean(tests):.4f} | {min(tests):.4f}-{max(tests):.4f} | "
              + " | ".join(f"{curve[e - 1]:.3f}" for e in epochs) + " |")
    print(f"\nTask A afterwards (its test set; {pretrained['test_acc']:.4f} before training on "
          "B), with A's head: the run's own under learning without forgetting, else the head "
          "as pre-training left it:\n")
    print("| B trained | A test accuracy, mean | range |\n|---|---|---|")
    for name, runs in results.items():
        old = [r["old_acc"] for r in runs]
        print(f"| {name} | {np.mean(old):.4f} | {min(old):.4f}-{max(old):.4f} |")


if __name__ == "__main__":
    main()
