"""Fashion-MNIST training job in the style of the OSS read/write-splitting guide.

It reads the MNIST-format IDX files from $TEST_TMPDIR/train/data, trains a small
convolutional network, logs summaries for TensorBoard and saves a checkpoint every 100 steps
to $TEST_TMPDIR/training_logs, resuming from the latest checkpoint found there. It is an
ordinary TensorFlow 2 program: it knows nothing about object stores or rwsplit, and only uses
file APIs (Python's gzip.open, or tf.io.gfile with --reader=gfile).

Log lines, as in the guide:
    dataload cost time: <seconds>
    Accuracy at step N: <accuracy>
    Save checkpoint at step N
"""

import argparse
import gzip
import os
import sys
import time

import numpy as np
import tensorflow as tf

IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def parse_args(argv):
    root = os.environ.get("TEST_TMPDIR", "/mnt")
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=os.path.join(root, "train", "data"))
    p.add_argument("--log-dir", default=os.path.join(root, "training_logs"))
    p.add_argument("--steps", type=int, default=int(os.environ.get("TRAIN_STEPS", 2000)),
                   help="training steps to run in this invocation (after any resume)")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--learning-rate", type=float, default=0.05)
    p.add_argument("--eval-every", type=int, default=10)
    p.add_argument("--save-every", type=int, default=100)
    p.add_argument("--max-to-keep", type=int, default=3)
    p.add_argument("--reader", choices=("gzip", "gfile"),
                   default=os.environ.get("DATA_READER", "gzip"),
                   help="gzip: Python's gzip.open; gfile: tf.io.gfile.GFile + gzip")
    return p.parse_args(argv)


def read_gz(path, reader):
    """The decompressed bytes of a .gz file, through the chosen file API."""
    if reader == "gfile":
        with tf.io.gfile.GFile(path, "rb") as f:
            return gzip.decompress(f.read())
    with gzip.open(path, "rb") as f:
        return f.read()


def parse_idx(raw, magic, what):
    """An IDX array (big-endian header: magic, then one uint32 per dimension)."""
    ndim = 3 if magic == IMAGES_MAGIC else 1
    header = np.frombuffer(raw, dtype=">u4", count=1 + ndim)
    if header[0] != magic:
        raise ValueError(f"{what}: not an IDX file of that kind (magic {header[0]})")
    dims = [int(d) for d in header[1:]]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 * (1 + ndim))
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{what}: {data.size} bytes of data for dimensions {dims}")
    return data.reshape(dims)


def load(data_dir, reader):
    out = {}
    for split, (images, labels) in FILES.items():
        x = parse_idx(read_gz(os.path.join(data_dir, images), reader), IMAGES_MAGIC, images)
        y = parse_idx(read_gz(os.path.join(data_dir, labels), reader), LABELS_MAGIC, labels)
        out[split] = (x.astype(np.float32)[..., None] / 255.0, y.astype(np.int64))
    return out


class Net(tf.Module):
    """conv 5x5x16 → max-pool → conv 5x5x32 → max-pool → dense 128 → dense 10."""

    def __init__(self):
        super().__init__()
        init = tf.initializers.GlorotUniform(seed=1)
        self.c1 = tf.Variable(init([5, 5, 1, 16]), name="conv1")
        self.b1 = tf.Variable(tf.zeros([16]), name="conv1_bias")
        self.c2 = tf.Variable(init([5, 5, 16, 32]), name="conv2")
        self.b2 = tf.Variable(tf.zeros([32]), name="conv2_bias")
        self.w3 = tf.Variable(init([7 * 7 * 32, 128]), name="fc1")
        self.b3 = tf.Variable(tf.zeros([128]), name="fc1_bias")
        self.w4 = tf.Variable(init([128, 10]), name="fc2")
        self.b4 = tf.Variable(tf.zeros([10]), name="fc2_bias")

    def __call__(self, x):
        x = tf.nn.relu(tf.nn.conv2d(x, self.c1, 1, "SAME") + self.b1)
        x = tf.nn.max_pool2d(x, 2, 2, "SAME")
        x = tf.nn.relu(tf.nn.conv2d(x, self.c2, 1, "SAME") + self.b2)
        x = tf.nn.max_pool2d(x, 2, 2, "SAME")
        x = tf.nn.relu(tf.reshape(x, [-1, 7 * 7 * 32]) @ self.w3 + self.b3)
        return x @ self.w4 + self.b4


def main(argv):
    args = parse_args(argv)
    t0 = time.time()
    data = load(args.data_dir, args.reader)
    print(f"dataload cost time: {time.time() - t0:.3f}", flush=True)
    x_train, y_train = data["train"]
    x_test, y_test = data["test"][0][:2000], data["test"][1][:2000]

    net = Net()
    step = tf.Variable(0, dtype=tf.int64, name="global_step")
    velocity = [tf.Variable(tf.zeros_like(v), name=v.name.split(":")[0] + "_momentum")
                for v in net.trainable_variables]
    ckpt = tf.train.Checkpoint(net=net, step=step, velocity=velocity)
    manager = tf.train.CheckpointManager(ckpt, args.log_dir, max_to_keep=args.max_to_keep)
    if manager.latest_checkpoint:
        ckpt.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        print(f"Restored checkpoint {manager.latest_checkpoint} at step {int(step)}",
              flush=True)
    writer = tf.summary.create_file_writer(args.log_dir)

    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, net(x)))
        grads = tape.gradient(loss, net.trainable_variables)
        for v, g, m in zip(net.trainable_variables, grads, velocity):
            m.assign(0.9 * m + g)
            v.assign_sub(args.learning_rate * m)
        return loss

    @tf.function
    def accuracy(x, y):
        return tf.reduce_mean(tf.cast(tf.equal(tf.argmax(net(x), 1), y), tf.float32))

    rng = np.random.default_rng(int(step))
    start, first = time.time(), int(step)
    last = first + args.steps
    acc = float("nan")
    saves, save_time = 0, 0.0
    with writer.as_default():
        while int(step) < last:
            idx = rng.integers(0, len(x_train), args.batch_size)
            loss = train_step(x_train[idx], y_train[idx])
            step.assign_add(1)
            n = int(step)
            if n % args.eval_every == 0 or n == last:
                acc = float(accuracy(x_test, y_test))
                tf.summary.scalar("loss", loss, step=n)
                tf.summary.scalar("accuracy", acc, step=n)
                print(f"Accuracy at step {n}: {acc:.4f}", flush=True)
            if n % args.save_every == 0 or n == last:
                t = time.time()
                manager.save(checkpoint_number=n)
                save_time += time.time() - t
                saves += 1
                print(f"Save checkpoint at step {n}", flush=True)
    writer.close()
    took = time.time() - start
    print(f"Trained steps {first}..{int(step)} in {took:.1f}s "
          f"({took / max(1, int(step) - first) * 1000:.1f} ms/step), final accuracy {acc:.4f}, "
          f"checkpoint saves {saves} taking {save_time:.3f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
