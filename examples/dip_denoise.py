"""Deep Image Prior denoising (Ulyanov, Vedaldi and Lempitsky, 2018) with cnngraph.

    .venv/bin/python examples/dip_denoise.py [--size 128] [--iterations 1800] [--out DIR]

The network of specs/dip-denoise.yaml is fitted to one noisy image (scikit-image's
`astronaut`, the face cropped and halved to --size pixels, Gaussian noise of sigma 25/255,
clipped to [0, 1]) from a fixed input of noise, by the mean squared error against the noisy
image alone: the clean image is never seen. A network fits an image's structure long before
its noise, so training stops after a fixed number of iterations (the paper's early stopping).
As in the paper's code: Adam at 0.01, the input perturbed by fresh noise of std 1/30 every
step, and the result the exponential average (0.99) of the outputs. Prints the PSNR of the
noisy image and of the result against the clean one, and writes clean | noisy | denoised as
`before_after.png` in --out. Needs the `examples` extra (scikit-image, for the image).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import cnngraph
from cnngraph.train.optim import Adam
from cnngraph.train.png import as_pixels, write_png

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "specs" / "dip-denoise.yaml"


def test_image(size: int) -> np.ndarray:
    """The astronaut's face, (3, size, size) in [0, 1]: rows 0-255, columns 128-383 of the
    512x512 picture, averaged over blocks to `size` (a divisor of 256)."""
    try:
        from skimage import data
    except ImportError:
        raise SystemExit("the image comes from scikit-image: pip install 'cnngraph[examples]'") \
            from None
    face = data.astronaut()[:256, 128:384].astype(np.float64) / 255
    block = 256 // size
    face = face.reshape(size, block, size, block, 3).mean(axis=(1, 3))
    return face.transpose(2, 0, 1)


def psnr(image: np.ndarray, clean: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((image - clean) ** 2)))


def denoise(clean: np.ndarray, iterations: int, sigma: float = 25 / 255, seed: int = 0,
            every: int = 100, width: int = 32):
    """Fit the DIP network to `clean` plus noise; returns (noisy image, result, the PSNR of
    the result every `every` iterations as (iteration, dB) pairs)."""
    rng = np.random.default_rng(seed)
    noisy = np.clip(clean + rng.normal(0, sigma, clean.shape), 0, 1)
    channels = 32
    net = cnngraph.load(SPEC, input_shape=(channels, *clean.shape[1:]),
                        params={"width": width, "colours": len(clean)})
    model = cnngraph.compile(net, seed=seed)
    optimizer = Adam(model, 0.01)
    fixed = rng.uniform(0, 0.1, (1, channels, *clean.shape[1:])).astype(np.float32)
    target = noisy[None].astype(np.float32)
    average, curve = None, []
    for step in range(1, iterations + 1):
        perturbed = fixed + rng.normal(0, 1 / 30, fixed.shape).astype(np.float32)
        model.loss_and_grad(perturbed, {"main": target})
        optimizer.step()
        out = model.last_logits.reshape(clean.shape).astype(np.float64)
        average = out if average is None else 0.99 * average + 0.01 * out
        if step % every == 0 or step == iterations:
            curve.append((step, psnr(average, clean)))
    return noisy, average, curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--iterations", type=int, default=1800)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/dip"))
    args = parser.parse_args()
    clean = test_image(args.size)
    start = time.perf_counter()
    noisy, result, curve = denoise(clean, args.iterations, seed=args.seed)
    seconds = time.perf_counter() - start
    for step, db in curve:
        print(f"iteration {step}: {db:.2f} dB")
    before, after = psnr(noisy, clean), psnr(result, clean)
    print(f"noisy {before:.2f} dB -> denoised {after:.2f} dB (gain {after - before:+.2f} dB), "
          f"{args.iterations} iterations in {seconds:.0f} s")
    args.out.mkdir(parents=True, exist_ok=True)
    gap = np.ones((3, args.size, 4))
    write_png(args.out / "before_after.png",
              as_pixels(np.concatenate([clean, gap, noisy, gap, result], axis=2)))
    print(f"wrote {args.out / 'before_after.png'} (clean | noisy | denoised)")


if __name__ == "__main__":
    main()
