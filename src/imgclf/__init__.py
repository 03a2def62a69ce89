"""imgclf: a cross-validated image-classification pipeline for Kaggle-style competitions."""

__version__ = "0.1.0"
