"""layers: network3-style neural-network layers, a Network, an SGD trainer and data sets,
built on tinygraph.

``Network([FullyConnected(784, 100), Softmax(100, 10)], mini_batch_size=10)`` builds a
network; ``SGD(net, eta=0.1).fit(training_data, epochs, validation_data, test_data)`` trains
it; ``net.save(path)`` / ``Network.load(path)`` store it. :mod:`layers.network3` ports
network3 scripts.
"""

from . import datasets
from .activations import ACTIVATIONS, linear, relu, sigmoid, tanh
from .layers import Dropout, FullyConnected, Layer, Softmax
from .model_io import ModelFileError
from .network import Network
from .network3 import FullyConnectedLayer, ReLU, SoftmaxLayer
from .trainer import SGD, EpochRecord, TrainingResult

__all__ = [
    "ACTIVATIONS", "Dropout", "EpochRecord", "FullyConnected", "FullyConnectedLayer", "Layer",
    "ModelFileError", "Network", "ReLU", "SGD", "Softmax", "SoftmaxLayer", "TrainingResult",
    "datasets", "linear", "relu", "sigmoid", "tanh",
]
