"""wnbench: does Weight Normalization beat Batch Normalization in noise-sensitive training? Measured."""

__version__ = "0.1.0"
