"""layers: network3-style neural-network layers, a Network, an SGD trainer and data sets,
built on tinygraph."""
