"""Train a fully connected network on MNIST or Fashion-MNIST with layers.

Run: python examples/mnist.py [--dataset fashion-mnist] [--hidden 100] [--epochs 30]

Dropout (``--dropout P``) drops the inputs of every layer after the first (the hidden
activations), not the pixels. A missing data set (with ``--no-download``, or a failed
download) prints why and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys

import tinygraph as tg
from layers import SGD, EpochRecord, FullyConnected, Network, Softmax
from layers.datasets import DatasetError, load_dataset


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=["mnist", "fashion-mnist"], default="mnist")
    parser.add_argument("--data-dir", help="directory holding the IDX files")
    parser.add_argument("--no-download", action="store_true",
                        help="fail instead of downloading a missing data set")
    parser.add_argument("--hidden", type=int, nargs="+", default=[100],
                        help="hidden layer sizes")
    parser.add_argument("--activation", choices=["sigmoid", "tanh", "relu", "linear"],
                        default="sigmoid")
    parser.add_argument("--dropout", type=float, default=0.0,
                        help="dropout probability of the hidden activations")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--eta", type=float, default=0.1)
    parser.add_argument("--lmbda", type=float, default=0.0)
    parser.add_argument("--momentum", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None,
                        help="numpy, opencl or opencl:P:D (default: tinygraph.config.device)")
    parser.add_argument("--save", metavar="PATH", help="save the best network here")
    parser.add_argument("--plot", metavar="PATH", help="plot the training curves here")
    parser.add_argument("--patience", type=int, default=None,
                        help="stop after this many epochs without improvement")
    parser.add_argument("--train-size", type=int, default=None, metavar="N",
                        help="train on the first N training examples only")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def print_epoch(record: EpochRecord) -> None:
    print(f"Epoch {record.epoch}: training cost {record.training_cost:.4f}, validation "
          f"accuracy {record.validation_accuracy:.2%}, test accuracy {record.test_accuracy:.2%}, "
          f"{record.seconds:.1f} s, {record.examples_per_second:,.0f} examples/s", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.device:
        tg.config.device = args.device
    device = tg.config.device
    print(f"Device: {'NumPy backend' if device == 'numpy' else tg.device_info(device)}")
    try:
        train, validation, test = load_dataset(args.dataset, args.data_dir,
                                               download=not args.no_download)
    except DatasetError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.train_size is not None:
        train = (train[0][:args.train_size], train[1][:args.train_size])
    sizes = [train[0].shape[1], *args.hidden]
    layers = [FullyConnected(n_in, n_out, args.activation, p_dropout=args.dropout if i else 0.0)
              for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:]))]
    layers.append(Softmax(sizes[-1], 10, p_dropout=args.dropout if len(sizes) > 1 else 0.0))
    net = Network(layers, args.batch_size, seed=args.seed)
    trainer = SGD(net, args.eta, lmbda=args.lmbda, momentum=args.momentum)
    result = trainer.fit(train, args.epochs, validation, test, seed=args.seed,
                         patience=args.patience, progress=not args.no_progress,
                         on_epoch=print_epoch)
    if result.stopped_early:
        print(f"Stopped early: no improvement for {args.patience} epochs.")
    print(f"Best validation accuracy of {result.best_validation_accuracy:.2%} obtained at "
          f"epoch {result.best_epoch}; corresponding test accuracy of "
          f"{result.test_accuracy_at_best:.2%}")
    if args.save:
        net.save(args.save)
        print(f"Saved the network to {args.save}")
    if args.plot:
        result.plot(args.plot)
        print(f"Plotted the training curves to {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
