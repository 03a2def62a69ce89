"""Planning a run before it trains: batch size, optimiser steps, warm-up and image side from the data,
the machine and the time budget (``plan``), and the label-preserving views chosen by a probe on the
competition's folds (``views``); ``run`` fills them into the config keys the user left null."""
