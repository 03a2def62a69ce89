"""The competition folder as one table shape (three layouts), its images, the demo, and the folds."""
