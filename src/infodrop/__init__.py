"""infodrop: Information Dropout (Achille & Soatto, TPAMI 2018) and information planes of
dropout networks (Adilova, Geiger & Fischer, ICLR 2023), in PyTorch.

Units are nats throughout (natural logarithm).
"""

__version__ = "0.1.0"
