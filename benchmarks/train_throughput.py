#!/usr/bin/env python3
"""Training samples per second of the vb_keras ResNets against the same networks in PyTorch.

Both sides train the whole model on 3 s clips at batch 32: min-max normalisation, log-mel (64 ms /
24 ms, 128 mels), the ResNet trunk (torchvision's layout), average pooling, three heads, and the
weighted loss (negative mean CCC + cross-entropy + MSE), with Adam. Keras is also tried with XLA
(jit_compile) and with mixed_bfloat16 (this CPU has AVX512_BF16). PyTorch 2.13 CPU is a
benchmark-only dependency: `pip install torch==2.13.0`. Target: Keras >= 1.0x PyTorch.

  python benchmarks/train_throughput.py [--depths 18,34,50] [--steps 6] [--variants plain,xla,bf16]
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402

from vb_keras import params  # noqa: E402
from vb_keras.keys import NUM_SAMPLES, WAVEFORM  # noqa: E402
from vb_keras.models import features, losses
from vb_keras.models import multitask  # noqa: E402
from vb_keras.schema import HUME_VB  # noqa: E402

BATCH, SECONDS, EMOTIONS, CLASSES = 32, 3.0, 10, 4
FRONTEND = params.RESNET_FRONTEND


def make_batch(rng):
    samples = int(SECONDS * FRONTEND.sample_rate)
    x = rng.uniform(-0.5, 0.5, (BATCH, samples)).astype(np.float32)
    y_emotion = rng.random((BATCH, EMOTIONS)).astype(np.float32)
    y_class = rng.integers(0, CLASSES, BATCH)
    y_age = rng.uniform(18, 40, (BATCH, 1)).astype(np.float32)
    return x, y_emotion, y_class, y_age


def keras_rate(depth, batch, steps, variant):
    keras.config.set_dtype_policy("mixed_bfloat16" if variant == "bf16" else "float32")
    keras.utils.set_random_seed(0)
    schema = HUME_VB.with_classes([str(i) for i in range(CLASSES)])
    model = multitask.build_model(f"resnet{depth}", schema)
    model.compile(keras.optimizers.Adam(3e-4, epsilon=1e-8),
                  loss={"emotion": losses.NegativeMeanCCC(),
                        "country": keras.losses.CategoricalCrossentropy(),
                        "age": keras.losses.MeanSquaredError()},
                  loss_weights={"emotion": 5.0, "country": 0.05, "age": 0.05},
                  jit_compile=variant == "xla")
    x, y_emotion, y_class, y_age = batch
    inputs = {WAVEFORM: x, NUM_SAMPLES: np.full(BATCH, x.shape[1], np.int32)}
    labels = {"emotion": y_emotion, "country": np.eye(CLASSES, dtype=np.float32)[y_class], "age": y_age}
    data = tf.data.Dataset.from_tensors((inputs, labels)).repeat()
    model.fit(data, steps_per_epoch=2, epochs=1, verbose=0)          # warm-up: tracing
    start = time.perf_counter()
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    rate = steps * BATCH / (time.perf_counter() - start)
    keras.config.set_dtype_policy("float32")
    return rate


class TorchResNet(torch.nn.Module):
    """The same network in PyTorch: front end, torchvision-layout trunk, pooling, three heads."""

    def __init__(self, depth):
        super().__init__()
        kind, stages = {18: ("basic", (2, 2, 2, 2)), 34: ("basic", (3, 4, 6, 3)),
                        50: ("bottleneck", (3, 4, 6, 3))}[depth]
        mel = features.mel_matrix(FRONTEND).numpy()
        self.register_buffer("mel", torch.from_numpy(mel))
        self.register_buffer("window", torch.hann_window(FRONTEND.window_length_samples))
        layers = [torch.nn.Conv2d(1, 64, 7, 2, 3, bias=False), torch.nn.BatchNorm2d(64),
                  torch.nn.ReLU(inplace=True), torch.nn.MaxPool2d(3, 2, 1)]
        channels = 64
        for stage, (width, blocks) in enumerate(zip((64, 128, 256, 512), stages)):
            for index in range(blocks):
                stride = 2 if stage > 0 and index == 0 else 1
                block = _TorchBlock(kind, channels, width, stride)
                layers.append(block)
                channels = block.out_channels
        self.trunk = torch.nn.Sequential(*layers)
        self.dropout = torch.nn.Dropout(0.3)
        self.emotion = torch.nn.Linear(channels, EMOTIONS)
        self.country = torch.nn.Linear(channels, CLASSES)
        self.age = torch.nn.Linear(channels, 1)

    def forward(self, waveform):
        low = waveform.min(dim=1, keepdim=True).values
        high = waveform.max(dim=1, keepdim=True).values
        waveform = 2 * (waveform - low) / (high - low).clamp_min(1e-12) - 1
        spectrum = torch.stft(waveform, FRONTEND.fft_length, FRONTEND.hop_length_samples,
                              FRONTEND.window_length_samples, self.window, center=False,
                              return_complex=True).abs().transpose(1, 2)
        log_mel = torch.log(spectrum @ self.mel + FRONTEND.log_offset)
        pooled = self.trunk(log_mel.unsqueeze(1)).mean(dim=(2, 3))
        pooled = self.dropout(pooled)
        return self.emotion(pooled), self.country(pooled), self.age(pooled)


class _TorchBlock(torch.nn.Module):
    def __init__(self, kind, channels, width, stride):
        super().__init__()
        if kind == "basic":
            self.out_channels = width
            self.body = torch.nn.Sequential(
                torch.nn.Conv2d(channels, width, 3, stride, 1, bias=False), torch.nn.BatchNorm2d(width),
                torch.nn.ReLU(inplace=True), torch.nn.Conv2d(width, width, 3, 1, 1, bias=False),
                torch.nn.BatchNorm2d(width))
        else:
            self.out_channels = 4 * width
            self.body = torch.nn.Sequential(
                torch.nn.Conv2d(channels, width, 1, bias=False), torch.nn.BatchNorm2d(width),
                torch.nn.ReLU(inplace=True), torch.nn.Conv2d(width, width, 3, stride, 1, bias=False),
                torch.nn.BatchNorm2d(width), torch.nn.ReLU(inplace=True),
                torch.nn.Conv2d(width, 4 * width, 1, bias=False), torch.nn.BatchNorm2d(4 * width))
        self.shortcut = (torch.nn.Identity() if stride == 1 and channels == self.out_channels else
                         torch.nn.Sequential(torch.nn.Conv2d(channels, self.out_channels, 1, stride,
                                                             bias=False),
                                             torch.nn.BatchNorm2d(self.out_channels)))

    def forward(self, x):
        return torch.relu(self.body(x) + self.shortcut(x))


def torch_rate(depth, batch, steps):
    torch.manual_seed(0)
    model = TorchResNet(depth)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4, eps=1e-8)
    x, y_emotion, y_class, y_age = (torch.from_numpy(np.asarray(v)) for v in batch)

    def step():
        emotion, country, age = model(x)
        t, p = y_emotion, emotion
        cov = ((t - t.mean(0)) * (p - p.mean(0))).mean(0)
        ccc = 2 * cov / (t.var(0, unbiased=False) + p.var(0, unbiased=False)
                         + (t.mean(0) - p.mean(0)) ** 2 + 1e-6)
        loss = (-5.0 * ccc.mean() + 0.05 * torch.nn.functional.cross_entropy(country, y_class)
                + 0.05 * torch.nn.functional.mse_loss(age, y_age))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for _ in range(2):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * BATCH / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", default="18,34,50")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--variants", default="plain,xla,bf16")
    args = parser.parse_args()
    batch = make_batch(np.random.default_rng(0))
    print(f"training throughput, batch {BATCH}, {SECONDS:g} s clips, three heads, {os.cpu_count()} "
          f"cores, TF {tf.__version__} / Keras {keras.__version__} vs PyTorch {torch.__version__}")
    for depth in (int(d) for d in args.depths.split(",")):
        theirs = torch_rate(depth, batch, args.steps)
        print(f"  ResNet{depth}: PyTorch {theirs:6.1f} samples/s")
        for variant in args.variants.split(","):
            ours = keras_rate(depth, batch, args.steps, variant)
            print(f"  ResNet{depth}: Keras {variant:5s} {ours:6.1f} samples/s  "
                  f"ratio {ours / theirs:.2f}x PyTorch (target >= 1.0x)")


if __name__ == "__main__":
    main()
