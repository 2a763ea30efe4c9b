"""Generate models/tiny_classifier: a real, tiny TensorFlow SavedModel for the dev stack and tests.

It has the reference ResNet50 model's interface (signature `serving_default`, input
`image_input` float32 (-1, 224, 224, 3)) so clients and load tests written for one work
with the other, but it weighs a few kilobytes: it averages each colour channel and maps
the three means to 10 class probabilities with fixed weights.

Needs TensorFlow, which the program itself does not:
    python -m venv /tmp/tf && /tmp/tf/bin/pip install tensorflow-cpu
    /tmp/tf/bin/python scripts/make_tiny_model.py
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import tensorflow as tf

NUM_CLASSES = 10
IMAGE_SIZE = 224


class TinyClassifier(tf.Module):  # type: ignore[misc]
    """Channel means -> dense layer -> softmax, with deterministic weights."""

    def __init__(self) -> None:
        super().__init__()
        weights = tf.reshape(tf.linspace(-1.0, 1.0, 3 * NUM_CLASSES), (3, NUM_CLASSES))
        self.kernel = tf.Variable(weights, name="kernel")
        self.bias = tf.Variable(tf.linspace(0.0, 0.1, NUM_CLASSES), name="bias")

    @tf.function(  # type: ignore[untyped-decorator]
        input_signature=[
            tf.TensorSpec([None, IMAGE_SIZE, IMAGE_SIZE, 3], tf.float32, name="image_input")
        ]
    )
    def serve(self, image_input: tf.Tensor) -> dict[str, tf.Tensor]:
        channel_means = tf.reduce_mean(image_input, axis=[1, 2])
        logits = tf.matmul(channel_means, self.kernel) + self.bias
        return {"probabilities": tf.nn.softmax(logits)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("models/tiny_classifier"))
    out: Path = parser.parse_args().out
    if out.exists():
        shutil.rmtree(out)
    module = TinyClassifier()
    tf.saved_model.save(module, str(out), signatures={"serving_default": module.serve})
    probabilities = module.serve(tf.ones([1, IMAGE_SIZE, IMAGE_SIZE, 3]))["probabilities"]
    print(f"wrote {out}; p(ones image) = {probabilities.numpy().round(4).tolist()}")


if __name__ == "__main__":
    main()
