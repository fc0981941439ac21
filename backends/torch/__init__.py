"""The torch backends (``torch``, ``torch-compile``, ``torch-native``) and the PyTorch code they run."""
