"""Backends turn an optimised graph into a program: NumPy (the reference) and OpenCL."""
