"""snapferry: EC2 snapshot and machine-image copying, self-hosted, over AWS's own wire protocols."""

__version__ = "0.1.0"
